"""Public entry points: :func:`simulate` (in memory, with the ground truth) and :func:`write_h5ad`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.io import sparse_dataset, write_elem

from .._keys import (
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    UNS_KEY,
)
from ._cells import (
    CONTROL_WEIGHT,
    allocate,
    cells,
    condition_weights,
    make_design,
    obs_frame,
    var_frame,
)
from ._model import Model, build_model, expected_log1p
from ._params import Params, check_int

#: Name of the simulator's record in ``uns['celltwin']``.
UNS_SIMULATION = "simulation"
#: Layers of the truth tables (:attr:`Simulation.effects`, :attr:`Simulation.interactions`).
LFC_LAYER, EXPECTED_LAYER = "log_fold_change", "expected"
_NAME_SEP = "|"  # truth rows are named context|perturbation|dose, as pp.pseudobulk names groups


@dataclass(frozen=True)
class Simulation:
    """A simulated experiment and its ground truth.

    Attributes
    ----------
    adata
        Canonical cells x genes: obs ``perturbation``, ``perturbation_type``, ``context``,
        ``batch``, ``dose``; raw counts in ``layers['counts']`` (int32); ``X`` = log1p CP10k
        (:func:`celltwin.pp.log_normalize`); ``var['is_tf']``; parameters and seed in
        ``uns['celltwin']['simulation']``.
    effects
        One row per perturbed condition (context, perturbation, dose), named
        ``context|perturbation|dose``. ``X``: true change of ``log1p`` CP10k expression against the
        context's control, computed on the noise-free mean profile (no sampling noise, no batch
        effect; the cell-state multipliers have mean 1, so this is the population mean).
        ``layers['log_fold_change']``: true natural-log fold change of mean expression before
        normalisation. ``layers['expected']``: the condition's noise-free log1p CP10k profile.
    interactions
        One row per combination condition: ``X`` = combination effect minus the sum of its
        single-perturbation effects (each single at the same dose); same for
        ``layers['log_fold_change']``. Zero means additive.
    grn
        Edge table: ``source`` (TF), ``target``, ``weight`` (signed, as used by the model),
        ``sign`` (+1 activation, -1 repression); ``confidence`` for DoRothEA networks.
    cooperativity
        Cooperative TF pairs: ``source_a``, ``source_b``, ``target``, ``weight`` (``v`` in the
        target's input ``... + v * a_a * a_b``; > 0 cooperative, < 0 redundant).
    perturbations
        One row per agent (guide target, drug, cytokine): ``perturbation_type``, ``targets``
        (``+``-joined genes), ``strength`` (residual/fold expression for genetic perturbations,
        maximum effect for drugs, maximum activation for cytokines), ``gain`` (raises activity or
        expression), ``ec50`` (uM) and ``hill`` (drugs), ``context_scale`` (cytokines: receptor
        level per context).
    """

    adata: AnnData
    effects: AnnData
    interactions: AnnData
    grn: pd.DataFrame
    cooperativity: pd.DataFrame
    perturbations: pd.DataFrame


def simulate(
    *,
    n_genes: int = 200,
    n_tfs: int = 20,
    contexts: Sequence[str] = ("A", "B"),
    n_perturbations: int = 10,
    perturbation_types: Sequence[str] = ("crispr_ko",),
    combinations: int = 5,
    drugs: int = 0,
    drug_combinations: int = 0,
    doses: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    cytokines: int = 0,
    cells_per_condition: int = 100,
    n_control_cells: int | None = None,
    n_batches: int = 1,
    library_size: float = 2_000.0,
    grn: Literal["random", "dorothea"] = "random",
    confidence: str = "AB",
    seed: int = 0,
) -> Simulation:
    """Simulate a perturbation experiment from a mechanistic gene regulatory network.

    A sparse signed network of TFs drives every gene through leaky logistic input functions;
    contexts differ in baseline expression and TF activity; perturbations act on the network
    (knockout, CRISPRi, CRISPRa on genes; drugs with a Hill dose-response and cytokines on TF
    activity) and propagate to its steady state. Cells are negative-binomial counts around that
    state, with log-normal library sizes, latent cell states and multiplicative batch effects.
    See :mod:`celltwin.simulate._model` for the equations.

    Parameters
    ----------
    n_genes, n_tfs
        Genes, of which the first ``n_tfs`` are TFs (regulators).
    contexts
        Names of the contexts (cell types or lines); every condition is simulated in each.
    n_perturbations
        Single genetic perturbations, each on a different gene (about 80 % TFs).
    perturbation_types
        Genetic perturbation types, assigned to the perturbations in turn: ``crispr_ko``
        (expression to 5-20 %, no functional protein), ``crispri`` (expression to 10-30 %),
        ``crispra`` (expression x3-10).
    combinations
        Pairs of genetic perturbations (of the same type) also applied together; pairs whose
        targets share downstream genes are favoured, so most interact.
    drugs, drug_combinations
        Drugs (each inhibiting, or for about 20 % activating, 1-2 TFs; EC50 within the dose range)
        and drug pairs, each given at every dose (pairs: both drugs at the same dose).
    doses
        Drug doses in uM.
    cytokines
        Cytokine-like perturbations that activate a program of 1-3 TFs, more strongly in some
        contexts (receptor level) than others.
    cells_per_condition
        Cells per perturbed condition (per context).
    n_control_cells
        Control cells per context; default ``2 * cells_per_condition``.
    n_batches
        Batches (cells assigned at random); with one batch there is no batch effect.
    library_size
        Median total counts per cell (log-normal, log s.d. 0.4).
    grn
        ``"random"`` (genes ``TF01``..., ``G001``...) or ``"dorothea"``: a subnetwork of DoRothEA
        with real gene symbols and signs (needs the shared priors, see
        :func:`celltwin.priors.read_dorothea`).
    confidence
        DoRothEA confidence levels to use (``grn="dorothea"`` only).
    seed
        Seed of everything; the model (network, effects) does not depend on the number of cells.

    Returns
    -------
    Simulation
        Cells and ground truth; see :class:`Simulation`. For the truth alone, a small
        ``cells_per_condition`` is enough: it does not change the model.

    Examples
    --------
    >>> sim = simulate(n_genes=50, n_tfs=5, n_perturbations=4, combinations=1,
    ...                cells_per_condition=20, seed=1)
    >>> sim.adata.n_obs, sim.adata.n_vars
    (280, 50)
    >>> sorted(sim.adata.obs["context"].unique())
    ['A', 'B']
    """
    params = _params(locals())
    if n_control_cells is None:
        n_control_cells = CONTROL_WEIGHT * cells_per_condition
    check_int("cells_per_condition", cells_per_condition, minimum=1)
    check_int("n_control_cells", n_control_cells, minimum=1)
    model = build_model(params)
    counts = condition_weights(model, per_condition=cells_per_condition, control=n_control_cells)
    design = make_design(model, counts.astype(np.int64))
    adata = cells(model, design, 0, design.n_cells)
    adata.uns[UNS_KEY][UNS_SIMULATION] = _uns_record(
        model, cells_per_condition=int(cells_per_condition), n_control_cells=int(n_control_cells)
    )
    effects, interactions = _truth(model)
    return Simulation(
        adata=adata,
        effects=effects,
        interactions=interactions,
        grn=model.network.edges.copy(),
        cooperativity=model.network.cooperative,
        perturbations=_agent_table(model),
    )


def write_h5ad(
    path: str | os.PathLike[str],
    *,
    n_cells: int,
    chunk_size: int = 50_000,
    compression: Literal["gzip", "lzf"] | None = None,
    n_genes: int = 200,
    n_tfs: int = 20,
    contexts: Sequence[str] = ("A", "B"),
    n_perturbations: int = 10,
    perturbation_types: Sequence[str] = ("crispr_ko",),
    combinations: int = 5,
    drugs: int = 0,
    drug_combinations: int = 0,
    doses: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    cytokines: int = 0,
    n_batches: int = 1,
    library_size: float = 2_000.0,
    grn: Literal["random", "dorothea"] = "random",
    confidence: str = "AB",
    seed: int = 0,
) -> Path:
    """Write a simulated experiment of any size to ``path`` without holding it in memory.

    Cells are drawn ``chunk_size`` at a time and appended to on-disk CSR matrices (``X`` and
    ``layers['counts']``); obs (a few bytes per cell) is kept in memory. The model parameters
    mean the same as in :func:`simulate`; cells are split over conditions as there (each
    context's control counts twice a perturbed condition), so ``write_h5ad(n_cells=N)`` with
    ``N`` equal to the cell count of the matching :func:`simulate` call writes exactly its cells.
    The output is the same for any ``chunk_size`` (cells are drawn in fixed blocks of 1,024, each
    with its own random stream). The ground truth is that of :func:`simulate` with the same model
    parameters (it does not depend on the cells).

    Parameters
    ----------
    path
        Output ``.h5ad`` file (overwritten).
    n_cells
        Total number of cells.
    chunk_size
        Cells drawn and written at a time; peak memory grows with it.
    compression
        HDF5 compression of the sparse matrices (``lzf`` is fast, ``gzip`` small).
    n_genes, n_tfs, contexts, n_perturbations, perturbation_types, combinations, drugs, drug_combinations, doses, cytokines, n_batches, library_size, grn, confidence, seed
        As in :func:`simulate`.

    Returns
    -------
    Path
        ``path``; readable with ``anndata.read_h5ad`` (also ``backed="r"``).
    """
    params = _params(locals())
    check_int("n_cells", n_cells, minimum=1)
    check_int("chunk_size", chunk_size, minimum=1)
    if compression not in (None, "gzip", "lzf"):
        raise ValueError(f"'compression' must be None, 'gzip' or 'lzf' (got {compression!r})")
    model = build_model(params)
    weights = condition_weights(model, per_condition=1, control=CONTROL_WEIGHT)
    design = make_design(model, allocate(weights, int(n_cells)))
    path = Path(path)
    # anndata writes sparse matrices resizable (maxshape None), so sparse_dataset(...).append can
    # grow them; fixed HDF5 chunks keep appends cheap whatever the first chunk's size.
    kwargs: dict[str, Any] = {"chunks": (1 << 16,)}
    if compression is not None:
        kwargs["compression"] = compression
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        write_elem(f, "obs", obs_frame(model, design, 0, design.n_cells))
        write_elem(f, "var", var_frame(model))
        for key in ("obsm", "varm", "obsp", "varp", "layers"):
            write_elem(f, key, {})
        uns: dict[str, Any] = {}
        for start in range(0, design.n_cells, chunk_size):
            chunk = cells(model, design, start, min(start + chunk_size, design.n_cells))
            for group, key, matrix in (
                (f, "X", chunk.X),
                (f["layers"], COUNTS_LAYER, chunk.layers[COUNTS_LAYER]),
            ):
                if start == 0:
                    # 64-bit indptr: millions of cells overflow 32 bits of non-zeros.
                    matrix.indptr = matrix.indptr.astype(np.int64)
                    write_elem(group, key, matrix, dataset_kwargs=kwargs)
                else:
                    sparse_dataset(group[key]).append(matrix)
            if start == 0:
                uns = chunk.uns[UNS_KEY]
        uns[UNS_SIMULATION] = _uns_record(model, n_cells=int(n_cells))
        write_elem(f, "uns", {UNS_KEY: uns})
    return path


def _params(args: dict[str, Any]) -> Params:
    names = Params.__dataclass_fields__
    return Params(**{k: v for k, v in args.items() if k in names})


def _uns_record(model: Model, **design: int) -> dict[str, Any]:
    return {"model": "celltwin.simulate", **model.params.to_uns(), **design}


def _truth(model: Model) -> tuple[AnnData, AnnData]:
    cond = model.conditions
    ctx_index = cond[CONTEXT].map({c: i for i, c in enumerate(model.params.contexts)}).to_numpy()
    profile = expected_log1p(model.log_expr)
    ctrl = model.control_rows[ctx_index]
    delta = profile - profile[ctrl]
    lfc = model.log_expr - model.log_expr[ctrl]
    var = var_frame(model)
    uns = {UNS_KEY: {UNS_SIMULATION: _uns_record(model)}}

    def table(rows: np.ndarray, x: np.ndarray, layers: dict[str, np.ndarray]) -> AnnData:
        obs = cond.iloc[rows].reset_index(drop=True)
        obs.index = pd.Index(
            obs[[CONTEXT, PERTURBATION, DOSE]].astype(str).agg(_NAME_SEP.join, axis=1)
        )
        order = np.lexsort((obs[DOSE], obs[PERTURBATION], obs[CONTEXT]))
        obs = obs.iloc[order]
        for key in (CONTEXT, PERTURBATION, PERTURBATION_TYPE, DOSE):
            obs[key] = obs[key].astype(str)
        return AnnData(X=x[order], obs=obs, var=var.copy(),
                       layers={k: v[order] for k, v in layers.items()}, uns=uns)  # fmt: skip

    perturbed = np.flatnonzero((cond[PERTURBATION] != CONTROL).to_numpy())
    effects = table(perturbed, delta[perturbed],
                    {LFC_LAYER: lfc[perturbed], EXPECTED_LAYER: profile[perturbed]})  # fmt: skip

    # Each combination against its singles at the same dose, in the same context.
    row_of = {(ctx_index[i], comps): i for i, comps in enumerate(model.components)}
    combos = [i for i, comps in enumerate(model.components) if len(comps) > 1]
    inter_x = np.zeros((len(combos), model.network.n_genes))
    inter_lfc = np.zeros_like(inter_x)
    for r, i in enumerate(combos):
        singles = [row_of[(ctx_index[i], (comp,))] for comp in model.components[i]]
        inter_x[r] = delta[i] - delta[singles].sum(axis=0)
        inter_lfc[r] = lfc[i] - lfc[singles].sum(axis=0)
    interactions = table(np.asarray(combos, dtype=int), inter_x, {LFC_LAYER: inter_lfc})
    return effects, interactions


def _agent_table(model: Model) -> pd.DataFrame:
    genes = model.network.genes
    rows = [
        {
            "name": a.name,
            PERTURBATION_TYPE: a.kind,
            "targets": COMBO_SEP.join(genes[t] for t in a.targets),
            "strength": a.strength,
            "gain": a.gain,
            "ec50": a.ec50,
            "hill": a.hill,
            "context_scale": a.context_scale,
        }
        for a in model.agents.values()
    ]
    return pd.DataFrame(rows).set_index("name")
