"""Norman 2019 subset (K562 CRISPRa, 500 genes): is an activated TF the top regulator of its response?

Each perturbation's effect is its pseudobulk mean minus the control cells' mean
(:func:`celltwin.pp.pseudobulk`), scored with :func:`celltwin.explain.activity` over DoRothEA
(confidence A-C, ``ulm``). The activated genes that are DoRothEA regulators are each
perturbation's true sources (both parts of a pair when both are); the AUROC is decoupler's
benchmark metric (:func:`celltwin.explain.recovery_auroc`, sign +1 for activation) over every
perturbation with at least one scored true source, every other scored regulator a negative.
Run at several ``min_size`` values: the 500-gene panel measures few targets per regulon, so the
regulons kept and dropped (with their measured targets) are printed for each.

    PYTHONPATH=src .venv/bin/python benchmarks/explain_norman.py
"""

from __future__ import annotations

import pandas as pd

from celltwin import io, pp
from celltwin._keys import CONTROL, PERTURBATION, split_combination
from celltwin.explain import activity, recovery_auroc
from celltwin.priors import read_dorothea

PATH = "/work/shared/data/norman2019/norman2019_k562_subset.h5ad"
MIN_SIZES = (10, 5, 3, 2)
#: DoRothEA confidence levels: A-C (the default), then all (A-E) to let more factors in.
LEVELS = ("ABC", "ABCDE")


def main() -> None:
    cells = io.read(PATH)
    bulk = pp.pseudobulk(cells)
    keep = (bulk.obs[PERTURBATION] != CONTROL).to_numpy()
    labels = list(bulk.obs[PERTURBATION][keep].astype(str))
    effects = pd.DataFrame(
        bulk.layers["delta"][keep], index=labels, columns=list(map(str, bulk.var_names))
    )
    print(f"{len(labels)} perturbations")
    for levels in LEVELS:
        evaluate(effects, labels, levels)


def evaluate(effects: pd.DataFrame, labels: list[str], levels: str) -> None:
    """The AUROC table at each min_size, for DoRothEA at confidence ``levels``."""
    regulons = read_dorothea(confidence=levels)
    tfs = set(regulons["tf"])
    measured = regulons[regulons["target"].isin(effects.columns)].groupby("tf").size()
    truth = {p: [g for g in split_combination(p) if g in tfs] for p in labels}
    truth = {p: t for p, t in truth.items() if t}
    activated = sorted({g for t in truth.values() for g in t})
    print(f"\n### DoRothEA {levels}\n\nactivated genes with a regulon: {activated}; measured "
          "targets among the 500 genes (of all targets): " + ", ".join(
        f"{g} {int(measured.get(g, 0))}/{int((regulons['tf'] == g).sum())}" for g in activated
    ))  # fmt: skip
    print(f"perturbations with a true TF: {truth}\n")
    print("| min_size | regulons scored | dropped | perturbations with a scored true TF | AUROC | "
          "rank of the true TF (of scored) per perturbation |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for min_size in MIN_SIZES:
        result = activity(effects, min_size=min_size, confidence=tuple(levels))
        scores = result.scores
        scored = {p: [g for g in t if g in scores.columns] for p, t in truth.items()}
        scored = {p: t for p, t in scored.items() if t}
        ranks = []
        for p, t in scored.items():
            order = scores.loc[p].rank(ascending=False)
            ranks.append(f"{p}: " + "/".join(f"{g} {int(order[g])}" for g in t))
        auroc = recovery_auroc(scores, scored) if scored else float("nan")
        print(f"| {min_size} | {scores.shape[1]} | {len(result.dropped)} | {len(scored)} | "
              f"{auroc:.3f} | {'; '.join(ranks) or '-'} |")  # fmt: skip


if __name__ == "__main__":
    main()
