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

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from itertools import combinations as _pairs
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit, log_expit, logsumexp

from .._keys import (
    CONTEXT,
    CONTROL,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    TARGET_SUM,
    join_combination,
)
from ..io import format_dose
from ._grn import Network, dorothea_network, random_network

#: Hill coefficient of a TF's activity as a function of its own expression.
HILL_TF = 2.0
#: Genetic perturbation types the simulator draws, with the range of their expression factor:
#: residual expression after knockout (nonsense-mediated decay) or CRISPRi, fold for CRISPRa.
GENETIC_STRENGTH: dict[str, tuple[float, float]] = {
    "crispr_ko": (0.05, 0.2),
    "crispri": (0.1, 0.3),
    "crispra": (3.0, 10.0),
}
#: Cell-to-cell heterogeneity: number of latent programs and the s.d. of their gene loadings.
N_PROGRAMS, PROGRAM_SD = 3, 0.25
#: Technical noise: s.d. of log library size, of per-gene batch factors and batch library shifts.
LIBRARY_LOG_SD, BATCH_GENE_SD, BATCH_LIBRARY_SD = 0.4, 0.2, 0.15
#: Gene-wise negative-binomial inverse dispersion: log-normal with this median and log s.d.
DISPERSION_MEDIAN, DISPERSION_LOG_SD = 5.0, 0.7
_FIXED_POINT_TOL, _FIXED_POINT_MAX_ITER = 1e-10, 2_000


@dataclass(frozen=True)
class Params:
    """Model parameters (everything except how many cells are drawn). Validated on creation."""

    n_genes: int = 200
    n_tfs: int = 20
    contexts: tuple[str, ...] = ("A", "B")
    n_perturbations: int = 10
    perturbation_types: tuple[str, ...] = ("crispr_ko",)
    combinations: int = 5
    drugs: int = 0
    drug_combinations: int = 0
    doses: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    cytokines: int = 0
    n_batches: int = 1
    library_size: float = 2_000.0
    grn: str = "random"
    confidence: str = "AB"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "contexts", tuple(str(c) for c in self.contexts))
        object.__setattr__(self, "perturbation_types", tuple(self.perturbation_types))
        object.__setattr__(self, "doses", tuple(float(d) for d in self.doses))
        for key in ("n_genes", "n_tfs", "n_batches"):
            check_int(key, getattr(self, key), minimum=1)
        for key in ("n_perturbations", "combinations", "drugs", "drug_combinations", "cytokines"):
            check_int(key, getattr(self, key), minimum=0)
        check_int("seed", self.seed, minimum=0)
        if self.n_tfs >= self.n_genes:
            raise ValueError(
                f"'n_tfs' must be smaller than 'n_genes' (got n_tfs={self.n_tfs}, "
                f"n_genes={self.n_genes}): lower n_tfs or raise n_genes"
            )
        if self.n_perturbations > self.n_genes:
            raise ValueError(
                f"'n_perturbations' must be <= n_genes={self.n_genes} (got "
                f"{self.n_perturbations}): each perturbation targets a different gene"
            )
        if not self.contexts or len(set(self.contexts)) != len(self.contexts):
            raise ValueError(f"'contexts' must be non-empty and unique (got {self.contexts!r})")
        bad = [t for t in self.perturbation_types if t not in GENETIC_STRENGTH]
        if bad or not self.perturbation_types:
            raise ValueError(
                f"'perturbation_types' must be a non-empty tuple of {sorted(GENETIC_STRENGTH)} "
                f"(got {self.perturbation_types!r})"
            )
        if self.drugs and not self.doses:
            raise ValueError("'doses' must hold at least one dose (in uM) when drugs > 0")
        if any(not math.isfinite(d) or d <= 0 for d in self.doses):
            raise ValueError(f"'doses' must be finite and > 0 uM (got {self.doses!r})")
        if len(set(self.doses)) != len(self.doses):
            raise ValueError(f"'doses' must be unique (got {self.doses!r})")
        if self.drug_combinations and self.drugs < 2:
            raise ValueError(
                f"'drug_combinations' is {self.drug_combinations} but drugs={self.drugs}: "
                "combinations need at least 2 drugs"
            )
        if self.cytokines and self.n_tfs < 1:
            raise ValueError("'cytokines' need at least one TF (n_tfs >= 1)")
        if not (math.isfinite(self.library_size) and self.library_size >= 10):
            raise ValueError(f"'library_size' must be >= 10 counts (got {self.library_size!r})")
        if self.grn not in GRN_BUILDERS:
            raise ValueError(f"'grn' must be one of {sorted(GRN_BUILDERS)} (got {self.grn!r})")
        if not self.confidence or set(self.confidence) - set("ABCDE"):
            raise ValueError(
                f"'confidence' must be DoRothEA levels such as 'AB' or 'ABC' "
                f"(got {self.confidence!r})"
            )

    def to_uns(self) -> dict[str, Any]:
        """The parameters as h5ad-writable values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def check_int(key: str, value: Any, *, minimum: int) -> None:
    """Raise a ValueError naming ``key`` unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"'{key}' must be an integer >= {minimum} (got {value!r})")


#: Network builders by name (the ``grn`` parameter).
GRN_BUILDERS: dict[str, Callable[[Params, np.random.Generator], Network]] = {
    "random": lambda p, rng: random_network(n_genes=p.n_genes, n_tfs=p.n_tfs, rng=rng),
    "dorothea": lambda p, rng: dorothea_network(
        n_genes=p.n_genes, n_tfs=p.n_tfs, rng=rng, confidence=p.confidence
    ),
}


@dataclass(frozen=True)
class Agent:
    """One perturbation agent: a guide (genetic), a drug or a cytokine."""

    name: str
    kind: str  # a value of PERTURBATION_TYPES
    targets: tuple[int, ...]  # gene indices (TFs for drugs and cytokines)
    strength: float  # genetic: expression factor; drug: max effect (Emax); cytokine: max push
    gain: bool = False  # drugs and cytokines: push activity up instead of scaling it down
    ec50: float = math.nan  # drugs, uM
    hill: float = math.nan  # drugs
    context_scale: tuple[float, ...] = ()  # cytokines: receptor level per context


@dataclass
class Levers:
    """What a condition does to the network: expression factor, activity scale and push."""

    expr: np.ndarray  # (n_genes,) multiplies expression (g)
    scale: np.ndarray  # (n_tfs,) multiplies TF activity (h)
    keep: np.ndarray  # (n_tfs,) prod(1 - e): 1 - activity is multiplied by it


def hill_effect(dose: float, *, ec50: float, hill: float, emax: float) -> float:
    """Fractional effect of a drug at ``dose`` (uM): ``emax * d^h / (ec50^h + d^h)``."""
    return emax / (1.0 + (ec50 / dose) ** hill) if dose > 0 else 0.0


def _knockout(agent: Agent, dose: float | None, ctx: int, lv: Levers) -> None:
    for t in agent.targets:
        lv.expr[t] *= agent.strength
        if t < lv.scale.size:  # a null allele: no functional protein whatever the mRNA
            lv.scale[t] = 0.0


def _expression(agent: Agent, dose: float | None, ctx: int, lv: Levers) -> None:
    for t in agent.targets:
        lv.expr[t] *= agent.strength


def _drug(agent: Agent, dose: float | None, ctx: int, lv: Levers) -> None:
    if dose is None:
        raise ValueError(f"drug {agent.name!r} needs a dose")
    e = hill_effect(dose, ec50=agent.ec50, hill=agent.hill, emax=agent.strength)
    for t in agent.targets:
        if agent.gain:
            lv.keep[t] *= 1.0 - e
        else:
            lv.scale[t] *= 1.0 - e


def _cytokine(agent: Agent, dose: float | None, ctx: int, lv: Levers) -> None:
    e = agent.strength * agent.context_scale[ctx]
    for t in agent.targets:
        lv.keep[t] *= 1.0 - e


#: How each perturbation type acts on the network.
APPLY: dict[str, Callable[[Agent, float | None, int, Levers], None]] = {
    "crispr_ko": _knockout,
    "crispri": _expression,
    "crispra": _expression,
    "drug": _drug,
    "cytokine": _cytokine,
}


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

    agents, conditions, components = _draw_design(p, net, _rng(p.seed, 0, 2))

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


# --- design: which agents, which conditions ----------------------------------------------------


def _pick_pairs(
    n: int, groups: list[list[int]], score: Callable[[int, int], float], k: int,
    rng: np.random.Generator, what: str,
) -> list[tuple[int, int]]:  # fmt: skip
    """Sample ``k`` distinct pairs within groups, favouring pairs that share downstream genes."""
    pairs = [pair for g in groups for pair in _pairs(sorted(g), 2)]
    if k > len(pairs):
        raise ValueError(
            f"'{what}' is {k} but only {len(pairs)} pairs are possible: lower {what} or add "
            "perturbations (combinations pair perturbations of the same type)"
        )
    if k == 0:
        return []
    w = np.array([score(a, b) for a, b in pairs]) + 0.05
    chosen = rng.choice(len(pairs), size=k, replace=False, p=w / w.sum())
    return [pairs[i] for i in sorted(chosen)]


def _draw_design(
    p: Params, net: Network, rng: np.random.Generator
) -> tuple[dict[str, Agent], pd.DataFrame, list[tuple[tuple[str, float | None], ...]]]:
    nt, n_ctx = net.n_tfs, len(p.contexts)
    downstream = [{int(i) for i in np.flatnonzero(net.weights[:, j])} for j in range(nt)]

    def reach(targets: tuple[int, ...]) -> set[int]:
        out: set[int] = set()
        for t in targets:
            out |= downstream[t] if t < nt else set()
        return out

    cooperating = {(int(j), int(k)) for j, k, _ in net.pairs}

    def overlap(a: Agent, b: Agent) -> float:
        ra, rb = reach(a.targets), reach(b.targets)
        linked = bool(set(a.targets) & rb) or bool(set(b.targets) & ra)
        joint = any((min(x, y), max(x, y)) in cooperating for x in a.targets for y in b.targets)
        return len(ra & rb) + 3.0 * linked + 10.0 * joint

    # Genetic perturbations: mostly TFs (their effects propagate), some other genes.
    n = p.n_perturbations
    n_tf = min(nt, max(n - (net.n_genes - nt), math.ceil(0.8 * n)))
    genes = np.concatenate([
        rng.choice(nt, size=n_tf, replace=False),
        nt + rng.choice(net.n_genes - nt, size=n - n_tf, replace=False),
    ]).astype(int)  # fmt: skip
    genes = genes[rng.permutation(n)]
    genetic: list[Agent] = []
    for i, g in enumerate(genes):
        kind = p.perturbation_types[i % len(p.perturbation_types)]
        lo, hi = GENETIC_STRENGTH[kind]
        genetic.append(
            Agent(net.genes[g], kind, (int(g),), float(rng.uniform(lo, hi)), gain=lo > 1)
        )

    width = len(str(max(p.drugs, p.cytokines, 1))) + 1
    drugs: list[Agent] = []
    lo_dose, hi_dose = (min(p.doses), max(p.doses)) if p.doses else (1.0, 1.0)
    for i in range(p.drugs):
        k = 1 if rng.random() < 0.7 or nt < 2 else 2
        drugs.append(Agent(
            name=f"drug{i + 1:0{width}d}", kind="drug",
            targets=tuple(sorted(int(t) for t in rng.choice(nt, size=k, replace=False))),
            strength=float(rng.uniform(0.6, 1.0)), gain=bool(rng.random() < 0.2),
            ec50=float(np.exp(rng.uniform(np.log(lo_dose) - 0.5, np.log(hi_dose) + 0.5))),
            hill=float(rng.uniform(0.8, 2.5)),
        ))  # fmt: skip
    cytokines = [
        Agent(
            name=f"cytokine{i + 1:0{width}d}", kind="cytokine",
            targets=tuple(sorted(int(t) for t in rng.choice(nt, size=min(nt, int(rng.integers(1, 4))), replace=False))),
            strength=float(rng.uniform(0.5, 0.95)), gain=True,
            context_scale=tuple(float(v) for v in rng.uniform(0.2, 1.0, n_ctx)),
        )
        for i in range(p.cytokines)
    ]  # fmt: skip

    by_type = [[i for i, a in enumerate(genetic) if a.kind == t] for t in p.perturbation_types]
    combos = _pick_pairs(n, by_type, lambda a, b: overlap(genetic[a], genetic[b]),
                         p.combinations, rng, "combinations")  # fmt: skip
    drug_combos = _pick_pairs(p.drugs, [list(range(p.drugs))],
                              lambda a, b: overlap(drugs[a], drugs[b]),
                              p.drug_combinations, rng, "drug_combinations")  # fmt: skip

    # Conditions, identical in every context: (label, type, components).
    plan: list[tuple[str, str, tuple[tuple[str, float | None], ...]]] = [(CONTROL, "control", ())]
    plan += [(a.name, a.kind, ((a.name, None),)) for a in genetic]
    for a, b in combos:
        names = sorted([genetic[a].name, genetic[b].name])
        plan.append((join_combination(names), genetic[a].kind, tuple((x, None) for x in names)))
    for d in drugs:
        plan += [(d.name, "drug", ((d.name, dose),)) for dose in p.doses]
    for a, b in drug_combos:
        names = sorted([drugs[a].name, drugs[b].name])
        plan += [
            (join_combination(names), "drug", tuple((x, dose) for x in names)) for dose in p.doses
        ]
    plan += [(c.name, "cytokine", ((c.name, None),)) for c in cytokines]

    rows, components = [], []
    for ctx in p.contexts:
        for label, kind, comps in plan:
            rows.append((ctx, label, kind, format_dose([d for _, d in comps])))
            components.append(comps)
    conditions = pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION, PERTURBATION_TYPE, DOSE])
    agents = {a.name: a for a in [*genetic, *drugs, *cytokines]}
    return agents, conditions, components
