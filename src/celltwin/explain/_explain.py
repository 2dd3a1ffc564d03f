"""One explanation of a set of responses: activity, enrichment, regulatory paths, and for a
screen a causal map (issue 19, point 6). :func:`explain_file` reads what ``celltwin explain``
is given: an effect table, a prediction file or a screen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._keys import COMBO_SEP, CONTEXT, CONTROL, CRISPRA, PERTURBATION, PERTURBATION_TYPE, UNS_KEY
from ..models import conditions_of, load
from ..pp import pseudobulk
from ._activity import NETS, Activity, _effects_frame, activity
from ._causal import CausalMap, causal_map
from ._enrich import GENE_SET_COLLECTIONS, Enrichment, enrichment
from ._paths import PRIOR_NETWORKS, regulatory_paths
from ._sources import sources

#: Kinds of input :func:`explain_file` reads.
INPUT_KINDS = ("effects", "prediction", "screen")
_VALUE_COLUMNS = ("effect", "delta", "log2_fold_change", "value")
_CONDITION_COLUMNS = ("condition", "perturbation")


@dataclass(frozen=True)
class Explanation:
    """Why each response looks as it does, as tables.

    Attributes
    ----------
    effects
        Conditions x genes responses explained.
    activity
        ``{net name: Activity}`` (DoRothEA regulators, PROGENy pathways); a net that could not
        be scored is absent and :attr:`notes` says why.
    enrichment
        Gene-set enrichment, or None (see :attr:`notes`).
    paths
        Regulatory paths (:func:`regulatory_paths`), empty when no condition names a gene.
    causal
        For a screen: the measured causal map (:func:`causal_map`); else None.
    sources
        What each prediction leaned on (issue 19, point 4: ``celltwin.explain.sources``), when
        a model was given; else None.
    kind
        What was explained: one of :data:`INPUT_KINDS`.
    notes
        What was read, skipped or dropped, and why.
    """

    effects: pd.DataFrame
    activity: dict[str, Activity]
    enrichment: Enrichment | None
    paths: pd.DataFrame
    causal: CausalMap | None = None
    sources: pd.DataFrame | None = None
    kind: str = "effects"
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by file stem: ``activity_<net>``, ``enrichment``, ``gsea``, ``paths``,
        ``causal_map``, ``sources``; long format, one row per (condition, item)."""
        out: dict[str, pd.DataFrame] = {}
        for net, act in self.activity.items():
            long = act.scores.stack().rename("score").to_frame()
            long["pvalue"] = act.pvalues.stack()
            long.index.names = ["condition", "source"]
            long = long.reset_index()
            long["measured_targets"] = long["source"].map(act.sizes).astype(np.int64)
            out[f"activity_{net}"] = long
        if self.enrichment is not None:
            out["enrichment"] = self.enrichment.ora
            if not self.enrichment.ranked.empty:
                out["gsea"] = self.enrichment.ranked
        out["paths"] = self.paths
        if self.causal is not None:
            out["causal_map"] = self.causal.edges
        if self.sources is not None:
            out["sources"] = self.sources
        return out


def _check_names(
    gene_sets: object = "hallmark",
    nets: Sequence[str] = NETS,
    network: Sequence[str] = PRIOR_NETWORKS,
) -> None:
    """Refuse unknown collection or network names before any work."""
    if isinstance(gene_sets, str) and gene_sets not in GENE_SET_COLLECTIONS:
        raise ValueError(f"unknown gene_sets={gene_sets!r}; choose one of "
                         f"{list(GENE_SET_COLLECTIONS)}")  # fmt: skip
    for key, names, known in (("nets", nets, NETS), ("network", network, PRIOR_NETWORKS)):
        bad = [n for n in names if n not in known]
        if bad or not names:
            raise ValueError(f"unknown {key}={','.join(names)!r}; choose from {list(known)}")


def _condition_targets(names: Sequence[str]) -> dict[str, list[str]]:
    """``context|perturbation|dose`` or ``perturbation`` -> the perturbation's components."""
    out = {}
    for name in names:
        parts = str(name).split("|")
        perturbation = parts[1] if len(parts) > 1 else parts[0]
        out[str(name)] = [p for p in perturbation.split(COMBO_SEP) if p and p != CONTROL]
    return out


def explain(
    effects: pd.Series | pd.DataFrame | ad.AnnData,
    *,
    targets: Mapping[str, Sequence[str]] | None = None,
    direction: int | Mapping[str, int] = -1,
    gene_sets: str | Mapping[str, Sequence[str]] = "hallmark",
    nets: Sequence[str] = ("dorothea", "progeny"),
    network: Sequence[str] = ("dorothea", "string"),
    n_genes: int = 20,
    seed: int = 0,
) -> Explanation:
    """Explain responses: regulator/pathway activity, enrichment and regulatory paths.

    Parameters
    ----------
    effects
        Responses, as for :func:`activity`. Rows named ``context|perturbation|dose`` (as
        :func:`celltwin.pp.pseudobulk` names them) or by the perturbation give their targets.
    targets
        ``{condition: [perturbed genes]}`` for the paths; default read from the row names.
    direction
        -1 (loss of function, the default) or +1 (gain), for all or per condition.
    gene_sets, nets, network
        Gene sets for :func:`enrichment`, nets for :func:`activity`, prior networks for
        :func:`regulatory_paths`.
    n_genes
        Most affected genes per condition whose paths are sought.
    seed
        Seed of the ranked enrichment test's permutations.

    Returns
    -------
    Explanation
        Tables and notes; a part that cannot be computed (too few measured genes, decoupler
        missing) is skipped with a note rather than failing the whole explanation.
    """
    _check_names(gene_sets, nets, network)
    frame = _effects_frame(effects)
    notes: list[str] = []
    scored: dict[str, Activity] = {}
    for net in nets:
        try:
            scored[net] = activity(frame, net=net)
            notes.append(scored[net].summary())
        except (ValueError, ImportError) as err:
            notes.append(f"{net} activity not computed: {err}")
    found = None
    try:
        found = enrichment(frame, gene_sets=gene_sets, seed=seed)
    except ImportError:
        found = enrichment(frame, gene_sets=gene_sets, ranked=False)
        notes.append("ranked enrichment (GSEA) not computed: pip install 'celltwin[explain]'")
    except ValueError as err:
        notes.append(f"enrichment not computed: {err}")
    if found is not None and len(found.dropped):
        notes.append(f"{len(found.dropped)} gene set(s) of {found.collection} dropped: too few "
                     "measured genes")  # fmt: skip
    if not scored and found is None:
        raise ValueError(
            f"nothing could be explained: none of the {frame.shape[1]} genes (e.g. "
            f"{list(frame.columns[:3])}) carries enough prior knowledge: {'; '.join(notes)}. "
            "Fix: name genes by HGNC symbol and measure more of them"
        )
    per = dict(targets) if targets is not None else _condition_targets(list(frame.index))
    genetic = [c for c in frame.index if per.get(c)]
    paths = pd.DataFrame()
    if genetic:
        signs = direction if isinstance(direction, Mapping) else dict.fromkeys(genetic, direction)
        paths = regulatory_paths(
            frame.loc[genetic],
            {c: list(per[c]) for c in genetic},
            network=network,
            direction={c: signs[c] for c in genetic},
            n_genes=n_genes,
        )
        n_found = int(paths["found"].sum())
        notes.append(f"regulatory paths: {n_found} of {len(paths)} (target, affected gene) pairs "
                     f"joined by a sign-agreeing path in {'+'.join(network)}")  # fmt: skip
    return Explanation(frame, scored, found, paths, notes=notes)


def _read_table(path: Path) -> pd.DataFrame:
    sep = "\t" if path.suffix in (".tsv", ".txt") else ","
    table = pd.read_csv(path, sep=sep)
    condition = next((c for c in _CONDITION_COLUMNS if c in table.columns), None)
    value = next((c for c in _VALUE_COLUMNS if c in table.columns), None)
    if "gene" in table.columns and condition is not None and value is not None:
        if table.duplicated([condition, "gene"]).any():
            raise ValueError(f"{path} has several rows for one ({condition}, gene); keep one")
        return table.pivot(index=condition, columns="gene", values=value).fillna(0.0)
    wide = table.set_index(table.columns[0])
    text = [str(c) for c, t in wide.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
    if wide.shape[1] == 0 or text:
        raise ValueError(
            f"{path} must be genes x conditions (first column the genes, one numeric column "
            f"per condition; {'non-numeric column(s) ' + str(text[:3]) if text else 'no condition column'}) "
            "or a long table with columns gene, condition and effect"
        )
    return wide.T


def _cells_effects(adata: ad.AnnData) -> tuple[pd.DataFrame, dict[str, int]]:
    """Pseudobulk deltas of every non-control condition, and each condition's direction."""
    pb = pseudobulk(adata)
    pb.obs_names = [str(n).rstrip("|") for n in pb.obs_names]  # "A|KLF1|" (no dose) -> "A|KLF1"
    keep = (pb.obs[PERTURBATION].astype(str) != CONTROL).to_numpy()
    frame = _effects_frame(pb[keep])
    gain = set()
    if PERTURBATION_TYPE in adata.obs.columns:
        types = adata.obs.groupby(PERTURBATION, observed=True)[PERTURBATION_TYPE].first()
        gain = {str(p) for p, t in types.items() if t == CRISPRA}
    pert = pb.obs[PERTURBATION].astype(str)[keep]
    return frame, {str(n): 1 if p in gain else -1 for n, p in pert.items()}


def _with_controls(pred: ad.AnnData, data: str | os.PathLike[str] | None) -> ad.AnnData:
    if (pred.obs[PERTURBATION].astype(str) == CONTROL).any():
        return pred
    if data is None:
        raise ValueError(
            "the prediction file holds no control cells to compute each condition's effect "
            "against. Fix: pass data= the cells it was predicted from (with their controls)"
        )
    cells = ad.read_h5ad(data)
    controls = cells[(cells.obs[PERTURBATION].astype(str) == CONTROL).to_numpy()]
    controls = controls[controls.obs[CONTEXT].isin(set(pred.obs[CONTEXT])).to_numpy()]
    genes = pred.var_names.intersection(controls.var_names)
    if len(genes) < pred.n_vars:
        raise ValueError(f"data lacks {pred.n_vars - len(genes)} of the predicted genes")
    columns = [c for c in pred.obs.columns if c in controls.obs.columns]
    both = ad.concat([pred[:, genes], controls[:, genes]], join="inner", index_unique="-")
    both.obs = both.obs[columns]
    return both


def explain_file(
    path: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    model: str | os.PathLike[str] | None = None,
    **options: object,
) -> Explanation:
    """Read an effect table, a prediction or a screen, and :func:`explain` it.

    Parameters
    ----------
    path
        ``.csv``/``.tsv``: effects, genes x conditions (first column the genes) or long
        (``gene``, ``condition``/``perturbation``, ``effect``/``delta``/``log2_fold_change``).
        ``.h5ad`` written by ``celltwin predict``: each condition's effect is its mean minus the
        control mean of its context (controls from the file, else from ``data``). An ``.h5ad``
        written by :func:`celltwin.pp.pseudobulk`: its ``layers['delta']``. Any other
        ``.h5ad`` of cells with controls is a screen: effects as for a prediction, plus the
        measured causal map (:func:`causal_map`).
    data
        Cells holding the controls of a prediction file without them.
    model
        A saved model: adds what each prediction leaned on (``celltwin.explain.sources``,
        issue 19 point 4) when that function is available.
    **options
        Passed to :func:`explain`.
    """
    _check_names(**{k: v for k, v in options.items() if k in ("gene_sets", "nets", "network")})  # type: ignore[arg-type]
    fitted = load(model) if model is not None else None  # a bad --model fails before any work
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"input {source} not found; give an effect table or an .h5ad")
    cmap, kind, asked = None, "effects", None
    if source.suffix in (".csv", ".tsv", ".txt"):
        effects, signs = _read_table(source), None
    elif source.suffix == ".h5ad":
        cells = ad.read_h5ad(source)
        missing = [k for k in (PERTURBATION, CONTEXT) if k not in cells.obs.columns]
        if missing:
            raise KeyError(f"{source} lacks obs {missing}; prepare it first "
                           "(celltwin prepare FILE --out OUT.h5ad)")  # fmt: skip
        kind = "prediction" if "prediction" in cells.uns.get(UNS_KEY, {}) else "screen"
        if "delta" in cells.layers:  # pp.pseudobulk's output: the effects are there already
            kind, signs = "effects", None
            rows = (cells.obs[PERTURBATION].astype(str) != CONTROL).to_numpy()
            effects = _effects_frame(cells[rows])
            effects.index = [str(n).rstrip("|") for n in effects.index]
        else:
            if kind == "screen":
                cmap = causal_map(cells)
            else:
                asked = conditions_of(cells)
                cells = _with_controls(cells, data)
            effects, signs = _cells_effects(cells)
    else:
        raise ValueError(f"cannot read {source.name}: give a .csv/.tsv effect table or an .h5ad")
    options = dict(options)
    if signs is not None:
        options.setdefault("direction", signs)
    result = explain(effects, **options)  # type: ignore[arg-type]
    notes = [f"input: {source.name} read as {kind} ({effects.shape[0]} condition(s), "
             f"{effects.shape[1]} genes)", *result.notes]  # fmt: skip
    if cmap is not None:
        notes.append(f"causal map: {len(cmap.edges)} target -> gene edges at FDR < {cmap.alpha}")
    table = None
    if fitted is not None:
        # what each prediction leaned on (issue 19, point 4): the conditions of a prediction
        # file, or the model's own test conditions for other inputs
        table = sources(fitted, data, conditions=asked)
        notes.append(f"sources: what each prediction leaned on, from the model in {model}")
    return Explanation(result.effects, result.activity, result.enrichment, result.paths,
                       causal=cmap, sources=table, kind=kind, notes=notes)  # fmt: skip
