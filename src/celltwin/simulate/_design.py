"""What the simulator perturbs: agents (guides, drugs, cytokines), how each acts on the network,
and which conditions are drawn."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations as _pairs

import numpy as np
import pandas as pd

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, PERTURBATION_TYPE, join_combination
from ..io import format_dose
from ._grn import Network
from ._params import GENETIC_STRENGTH, Params


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


def draw_design(
    p: Params, net: Network, rng: np.random.Generator
) -> tuple[dict[str, Agent], pd.DataFrame, list[tuple[tuple[str, float | None], ...]]]:
    """The agents, the conditions (the same in every context) and each condition's components."""
    genetic = _genetic_agents(p, net, rng)
    width = len(str(max(p.drugs, p.cytokines, 1))) + 1
    drugs = _drug_agents(p, net.n_tfs, width, rng)
    cytokines = _cytokine_agents(p, net.n_tfs, width, rng)
    overlap = _overlap(net)
    by_type = [[i for i, a in enumerate(genetic) if a.kind == t] for t in p.perturbation_types]
    combos = _pick_pairs(p.n_perturbations, by_type, lambda a, b: overlap(genetic[a], genetic[b]),
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


def _overlap(net: Network) -> Callable[[Agent, Agent], float]:
    """How much two agents' effects meet: shared downstream genes, links, cooperating TFs."""
    nt = net.n_tfs
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

    return overlap


def _genetic_agents(p: Params, net: Network, rng: np.random.Generator) -> list[Agent]:
    """Genetic perturbations: mostly TFs (their effects propagate), some other genes."""
    nt, n = net.n_tfs, p.n_perturbations
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
    return genetic


def _drug_agents(p: Params, nt: int, width: int, rng: np.random.Generator) -> list[Agent]:
    """Drugs on one or two TFs, with a Hill dose response around the doses given."""
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
    return drugs


def _cytokine_agents(p: Params, nt: int, width: int, rng: np.random.Generator) -> list[Agent]:
    """Cytokines pushing one to three TFs, through a receptor level per context."""
    return [
        Agent(
            name=f"cytokine{i + 1:0{width}d}", kind="cytokine",
            targets=tuple(sorted(int(t) for t in rng.choice(nt, size=min(nt, int(rng.integers(1, 4))), replace=False))),
            strength=float(rng.uniform(0.5, 0.95)), gain=True,
            context_scale=tuple(float(v) for v in rng.uniform(0.2, 1.0, len(p.contexts))),
        )
        for i in range(p.cytokines)
    ]  # fmt: skip
