"""The mechanistic model: contexts, perturbations, the network's steady state and the true effects.

Expression of gene ``i`` in context ``k`` (linear scale, before normalisation) is

.. math::

    x_i = g_i \\, e^{s_{ki}} \\, [\\ell_i + (1 - \\ell_i) \\,
          \\sigma(c_{ki} + \\sum_j W_{ij} a_j + \\sum_{(j,k)} V_{ijk} a_j a_k)]

a leaky logistic (thermodynamic-style) input function of the activities ``a_j`` of its
regulating TFs (``V``: cooperative pairs, see :mod:`._grn`), scaled by a gene-wise level ``s``; ``g`` is a genetic factor (knockout,
CRISPRi, CRISPRa), 1 otherwise. A TF's activity is a Hill function (coefficient 2) of its own
expression, times a context-specific activity ``tau`` and a protein-level factor ``h`` (knockout
0, inhibiting drug ``1 - E(dose)``), then pushed towards 1 by activators (drugs, cytokines):

.. math::

    a_j = 1 - (1 - h_j \\tau_{kj} \\, \\mathrm{hill}(x_j / K_j)) \\prod_m (1 - e_{mj})

Because TFs regulate TFs, the steady state is a fixed point in the TFs' log-expression; the
TF -> TF weights are scaled (:data:`._grn.MAX_TF_INPUT`) so the map is a contraction and the
fixed point is unique. Epistasis comes from the network itself: cooperative TF pairs,
saturating input functions, TF cascades and shared targets make combined effects non-additive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit, log_expit, logsumexp

from .._keys import CONTEXT, CONTROL, PERTURBATION, TARGET_SUM
from ._design import APPLY, Agent, Levers, draw_design
from ._grn import Network
from ._params import GRN_BUILDERS, Params

#: Hill coefficient of a TF's activity as a function of its own expression.
HILL_TF = 2.0
#: Cell-to-cell heterogeneity: number of latent programs and the s.d. of their gene loadings.
N_PROGRAMS, PROGRAM_SD = 3, 0.25
#: Technical noise: s.d. of log library size, of per-gene batch factors and batch library shifts.
LIBRARY_LOG_SD, BATCH_GENE_SD, BATCH_LIBRARY_SD = 0.4, 0.2, 0.15
#: Gene-wise negative-binomial inverse dispersion: log-normal with this median and log s.d.
DISPERSION_MEDIAN, DISPERSION_LOG_SD = 5.0, 0.7
_FIXED_POINT_TOL, _FIXED_POINT_MAX_ITER = 1e-10, 2_000


@dataclass(frozen=True)
class Model:
    """A drawn model: network, context parameters, agents, conditions and their steady states."""

    params: Params
    network: Network
    base_input: np.ndarray  # (n_ctx, n_genes) c
    log_scale: np.ndarray  # (n_ctx, n_genes) s
    leak: np.ndarray  # (n_genes,)
    tf_activity: np.ndarray  # (n_ctx, n_tfs) tau
    log_half: np.ndarray  # (n_tfs,) log K
    agents: dict[str, Agent]
    # Conditions (context, perturbation, perturbation_type, dose); row i <-> log_expr[i].
    conditions: pd.DataFrame
    components: list[tuple[tuple[str, float | None], ...]]  # per condition: (agent, dose)
    log_expr: np.ndarray  # (n_cond, n_genes) noise-free log expression at steady state
    dispersion: np.ndarray  # (n_genes,) NB inverse dispersion
    loadings: np.ndarray  # (n_genes, N_PROGRAMS) latent cell-state loadings
    batch_log: np.ndarray  # (n_batches, n_genes) multiplicative batch effect (log)
    batch_library: np.ndarray  # (n_batches,) library size shift (log)
    control_rows: np.ndarray  # (n_ctx,) row of each context's control condition


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def build_model(params: Params) -> Model:
    """Draw every random part of the model from ``params.seed`` (not the cells)."""
    p = params
    net = GRN_BUILDERS[p.grn](p, _rng(p.seed, 0, 0))
    n_ctx, n_genes, n_tfs = len(p.contexts), net.n_genes, net.n_tfs

    rng = _rng(p.seed, 0, 1)
    # Centre each gene's input so its TFs at half activity put it near the logistic's steep part.
    base = rng.normal(0.0, 1.0, n_genes) - 0.5 * net.weights.sum(axis=1)
    np.subtract.at(base, net.pairs[:, 2], 0.25 * net.pair_weights)
    base_input = base + rng.normal(0.0, 0.8, (n_ctx, n_genes))
    log_scale = rng.normal(0.0, 1.5, n_genes) + rng.normal(0.0, 0.4, (n_ctx, n_genes))
    leak = rng.uniform(0.02, 0.2, n_genes)
    tf_activity = rng.uniform(0.3, 1.0, (n_ctx, n_tfs))
    # Half-saturation: a TF's expression without input, averaged over contexts.
    no_input = log_scale[:, :n_tfs] + np.log(
        leak[:n_tfs] + (1 - leak[:n_tfs]) * expit(base_input[:, :n_tfs])
    )
    log_half = no_input.mean(axis=0)

    agents, conditions, components = draw_design(p, net, _rng(p.seed, 0, 2))

    rng = _rng(p.seed, 0, 3)
    dispersion = np.exp(rng.normal(np.log(DISPERSION_MEDIAN), DISPERSION_LOG_SD, n_genes))
    loadings = rng.normal(0.0, PROGRAM_SD, (n_genes, N_PROGRAMS))
    batch_log = rng.normal(0.0, BATCH_GENE_SD, (p.n_batches, n_genes))
    batch_library = rng.normal(0.0, BATCH_LIBRARY_SD, p.n_batches)
    if p.n_batches == 1:  # a single batch is the reference: no batch effect
        batch_log[:] = 0.0
        batch_library[:] = 0.0

    ctx_index = conditions[CONTEXT].map({c: i for i, c in enumerate(p.contexts)}).to_numpy()
    is_control = (conditions[PERTURBATION] == CONTROL).to_numpy()
    control_rows = np.array(
        [np.flatnonzero(is_control & (ctx_index == k))[0] for k in range(n_ctx)]
    )
    model = Model(
        params=p, network=net, base_input=base_input, log_scale=log_scale, leak=leak,
        tf_activity=tf_activity, log_half=log_half, agents=agents, conditions=conditions,
        components=components, log_expr=np.zeros((0, n_genes)), dispersion=dispersion,
        loadings=loadings, batch_log=batch_log, batch_library=batch_library,
        control_rows=control_rows,
    )  # fmt: skip
    # The steady states need the drawn model; they complete it.
    lvs = [levers(model, c, k) for c, k in zip(components, ctx_index, strict=True)]
    log_expr = steady_state(model, ctx_index, lvs)
    return replace(model, log_expr=log_expr)


def levers(model: Model, components: tuple[tuple[str, float | None], ...], ctx: int) -> Levers:
    """The levers of one condition: every component applied in turn."""
    lv = Levers(
        expr=np.ones(model.network.n_genes),
        scale=np.ones(model.network.n_tfs),
        keep=np.ones(model.network.n_tfs),
    )
    for name, dose in components:
        agent = model.agents[name]
        APPLY[agent.kind](agent, dose, ctx, lv)
    return lv


def steady_state(model: Model, ctx: np.ndarray, lvs: list[Levers]) -> np.ndarray:
    """Noise-free log expression (conditions x genes) at the network's fixed point.

    Iterates the TFs' log-expression map (a contraction, see the module docstring) to
    convergence, then reads every gene off the TF activities.
    """
    net = model.network
    nt = net.n_tfs
    log_g = np.log(np.stack([lv.expr for lv in lvs]))
    scale = np.stack([lv.scale for lv in lvs]) * model.tf_activity[ctx]
    keep = np.stack([lv.keep for lv in lvs])
    c, s = model.base_input[ctx], model.log_scale[ctx]
    leak = model.leak

    # Cooperative terms (non-TF genes only) as a pairs x genes scatter matrix.
    scatter = sp.csr_matrix(
        (net.pair_weights, (np.arange(len(net.pair_weights)), net.pairs[:, 2])),
        shape=(len(net.pair_weights), net.n_genes),
    )

    def log_x(act: np.ndarray, genes: slice) -> np.ndarray:
        u = c[:, genes] + act @ net.weights[genes].T
        if genes.stop is None and scatter.nnz:
            u = u + np.asarray(
                (scatter.T @ (act[:, net.pairs[:, 0]] * act[:, net.pairs[:, 1]]).T).T
            )
        ell = leak[genes]
        # log(ell + (1 - ell) * sigmoid(u)), computed without overflow for large |u|.
        return (
            log_g[:, genes] + s[:, genes] + np.logaddexp(np.log(ell), np.log1p(-ell) + log_expit(u))
        )

    def activity(log_tf: np.ndarray) -> np.ndarray:
        return 1.0 - (1.0 - scale * expit(HILL_TF * (log_tf - model.log_half))) * keep

    tfs = slice(0, nt)
    log_tf = log_x(activity(np.broadcast_to(model.log_half, (len(lvs), nt)).copy()), tfs)
    for _ in range(_FIXED_POINT_MAX_ITER):
        new = log_x(activity(log_tf), tfs)
        delta = np.max(np.abs(new - log_tf), initial=0.0)
        log_tf = new
        if delta < _FIXED_POINT_TOL:
            break
    else:  # pragma: no cover - the map is a contraction, so this only guards against a bug
        raise RuntimeError(f"steady state did not converge (last change {delta:.2e})")
    return log_x(activity(log_tf), slice(None))


def expected_log1p(log_expr: np.ndarray) -> np.ndarray:
    """``log1p`` of the noise-free profile normalised to TARGET_SUM (CP10k), per row."""
    return np.log1p(TARGET_SUM * np.exp(log_expr - logsumexp(log_expr, axis=1, keepdims=True)))
