"""Which perturbation produced this phenotype? The reverse-perturbation screen (issue 18).

scGPT's reverse-perturbation task as a screen: the query is a held-out perturbation's
*measured* effect; the candidates are every perturbation of the data set, the training ones as
their measured effects and the held-out ones as a model predicted them while they were held
out; the true perturbation should rank first. Scored with the ``mimic`` objective (most similar
is best) by :func:`_bench18_rank.score_candidates` (cosine and Pearson; celltwin.screen's when
it is importable). Tie-aware ranks: a model that predicts the same effect for every held-out
perturbation (``mean``) ties them, and its hit probability is split among the ties.

``replogle``
    Replogle 2022 K562, 5 folds (split seed 0) over the knockdowns measured in K562 and RPE1,
    20% of the K562 signatures held out per fold (predictions: ``_bench18_signatures.py``).
    Candidates: all of them. Models: ``signature_factor`` (chosen before any screen ran: the
    best signature model of ``replogle2022-k562-to-rpe1`` in BENCHMARKS.md, top100_up 0.512),
    the other learned signature models, and two baselines: ``mean_other_perturbations`` (the
    K562 mean signature, the ``mean`` screen) and ``mean_other_contexts`` (the knockdown's RPE1
    signature copied).
``norman``
    Norman 2019 subset, the ``norman2019-combinations`` folds (5 seeds): held-out pairs and
    singles; candidates: all 33 conditions (predictions: ``_bench18_cells.py``); models
    ``transition``, ``additive``, ``mean``.

    PYTHONPATH=src nice -n 10 python benchmarks/screen_reverse.py replogle|norman [--out CSV]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from _bench18_rank import (
    TOPS,
    mean_ci,
    paired,
    random_expectation,
    rank_of_true,
    score_candidates,
)
from celltwin._keys import PERTURBATION

REPLOGLE_PRIMARY = "signature_factor"
REPLOGLE_MODELS = (
    REPLOGLE_PRIMARY,
    "context_transfer_linear",
    "low_rank",
    "signature_blend",
    "mean_other_perturbations",
    "mean_other_contexts",
)
REPLOGLE_BASELINES = {"mean_other_perturbations": "mean", "mean_other_contexts": "RPE1 copy"}
NORMAN_SUITE = "norman2019-combinations"
NORMAN_MODELS = ("transition", "additive", "mean")
STATS = ("rr", *(f"top{k}" for k in TOPS), "rank")


def screen_queries(
    measured: np.ndarray,
    labels: list[str],
    held_out: list[str],
    predictions: dict[str, np.ndarray],
    genes: list[str],
    *,
    method: str,
) -> pd.DataFrame:
    """One screen per held-out label and model: query = the label's measured row; candidates =
    every label, measured rows except the held-out ones, which are the model's predictions
    (``predictions[model]``: rows in the order of ``held_out``). A measured row's score does
    not depend on the other rows, so it is computed once per query for all models."""
    index = {p: i for i, p in enumerate(labels)}
    held_idx = np.array([index[p] for p in held_out])
    train_idx = np.setdiff1d(np.arange(len(labels)), held_idx)
    rows = []
    for j, p in enumerate(held_out):
        query = measured[index[p]]
        scores = np.empty(len(labels))
        scores[train_idx] = score_candidates(query, measured[train_idx], genes, method=method)
        for model, pred in predictions.items():
            scores[held_idx] = score_candidates(query, pred, genes, method=method)
            rows.append({"query": p, "model": model, **rank_of_true(scores, held_idx[j])})
    return pd.DataFrame(rows)


# --- Replogle ---------------------------------------------------------------------------------


def replogle_results(methods: list[str]) -> pd.DataFrame:
    from _bench18_signatures import load, signatures, splits
    from celltwin.benchmark._suites._rank_scores import _Scored
    from celltwin.benchmark._suites._transfer import _on_genes

    sigs = signatures()
    scored = _Scored.of(sigs)
    folds = splits(sigs)
    labels = sorted({p for s in folds for p in s.test})
    genes = list(map(str, scored.genes))
    rows = np.array([scored.row_of[("K562", p)] for p in labels])
    measured = np.nan_to_num(scored.values[rows].astype(np.float64))
    print(f"Replogle: {len(labels)} knockdowns, {len(genes)} genes, {len(folds)} folds")
    frames = []
    for k, split in enumerate(folds):
        preds = {}
        for model in REPLOGLE_MODELS:
            pred = load(k, model)
            assert list(pred.obs[PERTURBATION]) == list(split.test)
            preds[model] = _on_genes(pred, scored.genes)
        for method in methods:
            res = screen_queries(measured, labels, list(split.test), preds, genes, method=method)
            frames.append(res.assign(fold=k, method=method))
    return pd.concat(frames, ignore_index=True)


# --- Norman -----------------------------------------------------------------------------------


def norman_results(methods: list[str]) -> pd.DataFrame:
    from _bench18_cells import load_fold
    from celltwin.benchmark import get_suite

    frames = []
    for fold in get_suite(NORMAN_SUITE).folds():
        measured, preds = load_fold(NORMAN_SUITE, fold, list(NORMAN_MODELS))
        labels = list(measured.obs[PERTURBATION].astype(str))
        genes = list(map(str, measured.var_names))
        x = np.asarray(measured.X, dtype=np.float64)
        held = list(next(iter(preds.values())).obs[PERTURBATION].astype(str))
        arrays = {}
        for model, pred in preds.items():
            assert list(map(str, pred.var_names)) == genes
            assert list(pred.obs[PERTURBATION].astype(str)) == held
            arrays[model] = np.asarray(pred.X, dtype=np.float64)
        for method in methods:
            res = screen_queries(x, labels, held, arrays, genes, method=method)
            res["kind"] = ["pair" if "+" in q else "single" for q in res["query"]]
            frames.append(res.assign(fold=fold, method=method))
    return pd.concat(frames, ignore_index=True)


# --- report -----------------------------------------------------------------------------------


def summary(results: pd.DataFrame, n_candidates: int, *, by: tuple[str, ...] = ()) -> str:
    """Markdown table: mean [bootstrap CI over queries] per model and method."""
    rand = random_expectation(n_candidates)
    head = [
        "method",
        *by,
        "model",
        "queries",
        "MRR",
        "top-1",
        "top-5",
        "top-10",
        "top-50",
        "mean rank",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for keys, g in results.groupby(["method", *by, "model"], sort=False):
        cells = [mean_ci(g[s].to_numpy()) for s in STATS[:-1]]
        lines.append(
            "| "
            + " | ".join([*map(str, keys), str(len(g)), *cells, f"{g['rank'].mean():.1f}"])
            + " |"
        )
    rnd = [f"{rand[s]:.3f}" for s in STATS[:-1]]
    lines.append("| | random (expected) | | " + " | ".join([*rnd, f"{rand['rank']:.1f}"]) + " |")
    return "\n".join(lines)


def comparisons(results: pd.DataFrame, model: str, others: dict[str, str]) -> str:
    """Paired differences (model − other) over the same queries, per method and statistic."""
    lines = [
        "| method | vs | MRR | top-1 | top-10 | top-50 |",
        "|---|---|---|---|---|---|",
    ]
    for method, g in results.groupby("method", sort=False):
        a = g[g["model"] == model].set_index(["fold", "query"]).sort_index()
        for other, label in others.items():
            b = g[g["model"] == other].set_index(["fold", "query"]).sort_index()
            assert a.index.equals(b.index)
            cells = [
                paired(a[s].to_numpy(), b[s].to_numpy()) for s in ("rr", "top1", "top10", "top50")
            ]
            lines.append(f"| {method} | {label} (`{other}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("replogle", "norman"))
    parser.add_argument("--out", type=Path, help="write the per-query results (CSV) here")
    parser.add_argument(
        "--methods",
        default="cosine,pearson",
        help="scores, comma-separated: cosine, pearson, wtcs (CMap, needs celltwin.screen)",
    )
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    if args.task == "replogle":
        res = replogle_results(args.methods.split(","))
        print(summary(res, len(set(res["query"]))))
        print()
        for model in REPLOGLE_MODELS[:4]:
            print(f"\n`{model}` against the baselines (paired over queries):")
            print(comparisons(res, model, REPLOGLE_BASELINES))
        others = {m: m for m in REPLOGLE_MODELS[1:4]}
        print(f"\n`{REPLOGLE_PRIMARY}` (pre-declared) against the other learned models:")
        print(comparisons(res, REPLOGLE_PRIMARY, others))
    else:
        res = norman_results(args.methods.split(","))
        print(summary(res, 33, by=("kind",)))
        print()
        print(comparisons(res, "transition", {"additive": "additive", "mean": "mean"}))
        top = res[res["method"] == "cosine"].pivot_table(
            index=["fold", "query"], columns="model", values="rank"
        )
        cos = res[res["method"] == "cosine"]
        print("\nTrue condition in the top 5 of 33 (cosine; ties split):")
        for (model, kind), g in cos.groupby(["model", "kind"], sort=False):
            print(f"  {model:>10} {kind:>6}: {g['top5'].sum():.1f} of {len(g)} queries")
        print()
        print("Rank of the true condition per query (cosine; 33 candidates):")
        print(top.round(1).to_string())
    if args.out:
        res.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
