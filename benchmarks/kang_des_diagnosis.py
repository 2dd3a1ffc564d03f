"""Why ``transition``'s DES was low on Kang 2018, and what the sparse gain changed.

DES (the VCC "DE overlap") ranks a prediction's significant genes (Wilcoxon, FDR < 0.05) by
|log2 fold change| and counts how many of the top N are among the N truly significant genes.
A gene that no control cell of the held-out type expresses has an infinite fold change as soon
as the prediction gives it anything. This script fits ``transition`` on one fold of
``kang2018-heldout-celltype`` with and without its fold-change transfer, generates the held-out
cells with and without the sparse gain (switched off by zeroing the fitted model's
``expressed_level_``, which leaves every predicted mean as it is), and prints per variant: the
number of truly and predicted significant genes, DES, how many of the predicted top N are genes
absent from every control cell, and the first few of them.

    .venv/bin/python benchmarks/kang_des_diagnosis.py [--fold FCGR3A_Mono] > des.md
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from celltwin._keys import CONTROL, PERTURBATION
from celltwin.benchmark import get_suite, predict_conditions
from celltwin.eval._de import rank_sum_test

SUITE = "kang2018-heldout-celltype"
FDR = 0.05


def dense(x: object) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", default="FCGR3A_Mono")
    args = parser.parse_args()
    task = get_suite(SUITE).task
    data = task.fold_data(args.fold)
    genes = np.asarray(data.genes)
    truth = dense(data.truth[:, genes].X)
    labels = data.truth.obs[PERTURBATION].astype(str).to_numpy()
    true_sig = rank_sum_test(truth, labels).fdr[0] < FDR
    n_true = int(true_sig.sum())
    control = truth[labels == CONTROL]
    absent = control.max(axis=0) == 0
    rows = []
    for fold_change in (False, True):
        model = task.make_model(
            "transition", seed=0, params={"fold_change": fold_change, "progress": False}
        ).fit(data.train)
        level = model.expressed_level_.copy()
        for sparse in (False, True):
            model.expressed_level_ = level if sparse else np.zeros_like(level)
            pred, _ = predict_conditions(model, data.query, conditions=data.conditions, seed=0)
            cells = dense(pred[:, genes].X)
            x = np.vstack([control, cells])
            lab = np.r_[np.full(len(control), CONTROL), np.full(len(cells), "IFNB")]
            de = rank_sum_test(x, lab)
            sig = np.flatnonzero(de.fdr[0] < FDR)
            lfc = np.abs(de.log2_fold_change[0])
            top = sig[np.argsort(-lfc[sig], kind="stable")[:n_true]]
            junk = top[absent[top] & ~true_sig[top]]
            rows.append(
                {
                    "fold_change": fold_change,
                    "sparse_gain": sparse,
                    "true significant": n_true,
                    "predicted significant": len(sig),
                    "des": round(float(true_sig[top].sum()) / n_true, 3),
                    "top N absent from all controls": len(junk),
                    "e.g.": ", ".join(genes[junk[:5]]),
                }
            )
    print(f"\n### {args.fold}: DE overlap of `transition`'s generated cells\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
