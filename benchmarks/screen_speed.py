"""Issue 18, "Speed": rank 10,000 single-gene candidates and 50,000 pairs with the flagship.

The flagship is ``transition`` with its defaults (``gene_prior="auto"``: GO+STRING features of
20,859 genes, so any of them can be asked for by name), fitted on every cell of Papalexi 2021
(THP-1, 25 CRISPR knockouts, 299 genes, one context). Each step runs in a fresh process, as a
user meets it (imports, reading the model and the data included), and prints one JSON line
with its wall times, peak RSS and the load average of the machine at the start and the end::

    python benchmarks/screen_speed.py fit --model /tmp/flagship            # fit (timed apart)
    python benchmarks/screen_speed.py singles --model /tmp/flagship --n 10000 --n-cells 200
    python benchmarks/screen_speed.py pairs --model /tmp/flagship --n 50000 --n-cells 200
    python benchmarks/screen_speed.py accuracy --model /tmp/flagship --n 500
    python benchmarks/screen_speed.py screen --model /tmp/flagship --n 10000   # the engine
    python benchmarks/screen_speed.py screen --model /tmp/flagship --n 50000 --kind pairs

Candidates: prior genes the model never measured, in a fixed order (a seeded permutation of
the prior's genes); pairs: every pair of the first prior genes, ``A+B`` composed from its
parts. The objective is the cosine similarity of each predicted effect to a query (the
measured effect of the STAT1 knockout: "mimic STAT1-KO"), one matrix product for all rows.
``accuracy`` compares effects and rankings at ``n_cells`` 32 to 500 with every control cell.
``--n-cells none`` calls ``predict_effects`` without ``n_cells`` (every control cell; also
how code from before ``n_cells`` existed is timed). ``effects`` writes the default call's
output for 46 conditions, and compares it with the same file from another version::

    PYTHONPATH=/tmp/old/src python benchmarks/screen_speed.py effects --model M --out old.h5ad
    python benchmarks/screen_speed.py effects --model M --out new.h5ad --against old.h5ad
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from itertools import combinations  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

#: Data set: (registry name, its one context, the measured perturbation used as query).
DATA = {
    "papalexi": ("papalexi2021_subset", "THP-1", "STAT1"),
    "norman": ("norman2019_subset", "K562", "KLF1"),
}
DATA_NAME, CONTEXT, QUERY = DATA["papalexi"]


def _report(step: str, **values: Any) -> dict[str, Any]:
    out = {
        "step": step,
        **values,
        "process_s": round(time.perf_counter() - START, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3),
        "load_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out), flush=True)
    return out


def _data() -> Any:
    from celltwin.data import load

    return load(DATA_NAME, progress=False)


def _controls_and_query(adata: Any, genes: list[str]) -> tuple[Any, np.ndarray]:
    pert = adata.obs["perturbation"].astype(str).to_numpy()
    x = adata[:, genes].X
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    query = x[pert == QUERY].mean(axis=0) - x[pert == "control"].mean(axis=0)
    return adata[pert == "control"].copy(), query


def _prior_genes(model: Any) -> list[str]:
    """Genes with prior features that the model never measured, in a seeded order."""
    measured = set(model.components_)
    genes = [g for g in model.feature_names_ if g not in measured]
    order = np.random.default_rng(0).permutation(len(genes))
    return [genes[i] for i in order]


def _pairs(genes: list[str], n: int) -> list[str]:
    k = 2
    while k * (k - 1) // 2 < n:
        k += 1
    return ["+".join(sorted(p)) for p in combinations(genes[:k], 2)][:n]


def _cosine(effects: np.ndarray, query: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(effects, axis=1) * np.linalg.norm(query)
    return (effects @ query) / np.where(norms > 0, norms, 1.0)


def _predict(model: Any, controls: Any, perturbations: list[str], args: Any, **extra: Any) -> Any:
    kwargs = dict(extra)
    if args.n_cells != "none":
        kwargs["n_cells"] = int(args.n_cells)
    if args.batch_size:
        kwargs["batch_size"] = args.batch_size
    conditions = [(CONTEXT, p) for p in perturbations]
    return model.predict_effects(controls, conditions=conditions, seed=0, **kwargs)


def fit(args: argparse.Namespace) -> None:
    load_start = os.getloadavg()
    from celltwin import models

    adata = _data()
    t = time.perf_counter()
    model = models.fit(
        adata, model="transition", split_key=None, seed=0, progress=False, out=args.model,
        overwrite=True,
    )  # fmt: skip
    _report(
        "fit", fit_s=round(time.perf_counter() - t, 1), load_start=load_start,
        feature_source=model.feature_source_, prior_genes=len(model.feature_names_),
        members=int(model.member_weights_.shape[0]), cells=adata.n_obs, genes=adata.n_vars,
        trained_views=list(model.trained_views_), data=DATA_NAME,
    )  # fmt: skip


def _screen(args: argparse.Namespace, pairs: bool) -> None:
    load_start = os.getloadavg()
    from celltwin import models

    t = time.perf_counter()
    model = models.load(args.model)
    controls, query = _controls_and_query(_data(), list(model.genes_))
    ready = time.perf_counter() - t
    genes = _prior_genes(model)
    candidates = _pairs(genes, args.n) if pairs else genes[: args.n]
    t = time.perf_counter()
    effects = _predict(model, controls, candidates, args)
    predict_s = time.perf_counter() - t
    t = time.perf_counter()
    scores = _cosine(np.asarray(effects.X, dtype=np.float64), query)
    order = np.argsort(-scores, kind="stable")
    rank_s = time.perf_counter() - t
    top = [(candidates[i], round(float(scores[i]), 3)) for i in order[:5]]
    _report(
        "pairs" if pairs else "singles", n=len(candidates), n_cells=args.n_cells,
        batch_size=args.batch_size, sources=effects.obs["source"].value_counts().to_dict(),
        load_model_and_data_s=round(ready, 2), predict_s=round(predict_s, 2),
        rank_s=round(rank_s, 3), top=top, load_start=load_start,
    )  # fmt: skip


def accuracy(args: argparse.Namespace) -> None:
    """Effects and rankings with ``n_cells`` control cells against every control cell."""
    from scipy.stats import spearmanr

    from celltwin import models

    model = models.load(args.model)
    controls, query = _controls_and_query(_data(), list(model.genes_))
    genes = _prior_genes(model)
    sets = {"singles": genes[: args.n], "pairs": _pairs(genes, args.n)}
    for kind, candidates in sets.items():
        conditions = [(CONTEXT, p) for p in candidates]
        full = model.predict_effects(controls, conditions=conditions, seed=0)
        x_full = np.asarray(full.X, dtype=np.float64)
        s_full = _cosine(x_full, query)
        top_full = set(np.argsort(-s_full)[:50])
        for n_cells in (32, 64, 128, 200, 500):
            sub = model.predict_effects(controls, conditions=conditions, seed=0, n_cells=n_cells)
            x = np.asarray(sub.X, dtype=np.float64)
            s = _cosine(x, query)
            per_row = [np.corrcoef(a, b)[0, 1] for a, b in zip(x, x_full, strict=True)]
            _report(
                "accuracy", kind=kind, n=len(candidates), n_cells=n_cells,
                median_row_pearson=round(float(np.median(per_row)), 5),
                min_row_pearson=round(float(np.min(per_row)), 5),
                max_abs_diff=round(float(np.abs(x - x_full).max()), 5),
                max_abs_effect=round(float(np.abs(x_full).max()), 5),
                score_spearman=round(float(spearmanr(s, s_full).statistic), 5),
                top50_overlap=len(top_full & set(np.argsort(-s)[:50])) / 50,
            )  # fmt: skip


def screen(args: argparse.Namespace) -> None:
    """The same screen through ``celltwin.screen.screen``: ``--kind`` singles or pairs,
    objective ``mimic`` of the query by ``--method`` (cosine, or wtcs: CMap's score)."""
    load_start = os.getloadavg()
    import pandas as pd

    from celltwin import models
    from celltwin import screen as ct_screen

    t = time.perf_counter()
    model = models.load(args.model)
    controls, query = _controls_and_query(_data(), list(model.genes_))
    ready = time.perf_counter() - t
    genes = _prior_genes(model)
    names = _pairs(genes, args.n) if args.kind == "pairs" else genes[: args.n]
    candidates = ct_screen.Candidates(
        table=pd.DataFrame(
            {"label": names, "perturbation": names, "dose": "", "kind": "predicted"}
        ),
        profiles=None,
    )
    t = time.perf_counter()
    objective = ct_screen.mimic(pd.Series(query, index=list(model.genes_)), method=args.method)
    result = ct_screen.screen(
        model, controls, candidates=candidates, objective=objective, context=CONTEXT,
        n_cells=int(args.n_cells), progress=False,
        **({"batch_size": args.batch_size} if args.batch_size else {}),
    )  # fmt: skip
    _report(
        "screen", kind=args.kind, method=args.method, n=len(names), n_cells=args.n_cells,
        batch_size=args.batch_size, load_model_and_data_s=round(ready, 2),
        screen_s=round(time.perf_counter() - t, 2), load_start=load_start,
        top=result.table["label"].head(5).tolist(),
    )  # fmt: skip


def effects(args: argparse.Namespace) -> None:
    """Default ``predict_effects`` (every control cell) of 30 prior genes, 10 measured
    knockouts, 5 pairs and the control, written to ``--out``; with ``--against`` (the same
    file from another version of the code) the largest differences are reported."""
    import anndata as ad

    from celltwin import models

    model = models.load(args.model)
    controls, _ = _controls_and_query(_data(), list(model.genes_))
    rng = np.random.default_rng(1)
    measured = sorted(model.components_)
    prior = list(rng.choice(_prior_genes(model), 30, replace=False))
    pairs = [(prior[0], prior[1]), (prior[2], measured[0]), (measured[1], measured[2])]
    pairs += [(prior[3], prior[4]), (measured[3], prior[5])]
    names = prior + measured[:10] + ["+".join(sorted(p)) for p in pairs] + ["control"]
    t = time.perf_counter()
    out = model.predict_effects(controls, conditions=[(CONTEXT, n) for n in names], seed=3)
    predict_s = time.perf_counter() - t
    out.write_h5ad(args.out)
    diffs = {}
    if args.against:
        ref = ad.read_h5ad(args.against)
        for name in ("X", "lower", "upper", "sd"):
            a = np.asarray(out.X if name == "X" else out.layers[name])
            b = np.asarray(ref.X if name == "X" else ref.layers[name])
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            diffs[name] = {
                "max_abs_diff": float(np.nanmax(np.abs(a - b))),
                "max_abs_value": float(np.nanmax(np.abs(b))),
                "nan_where_ref_nan": bool(np.array_equal(np.isnan(a), np.isnan(b))),
                "bit_identical_share": round(float(same.mean()), 3),
            }
        diffs["obs_equal"] = bool(
            (out.obs.astype(str).to_numpy() == ref.obs.astype(str).to_numpy()).all()
        )
    _report("effects", n=len(names), predict_s=round(predict_s, 2), diffs=diffs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "step", choices=("fit", "singles", "pairs", "accuracy", "screen", "effects")
    )
    parser.add_argument("--model", required=True, help="folder of the fitted flagship")
    parser.add_argument("--n", type=int, default=10_000, help="candidates")
    parser.add_argument("--n-cells", default="200", help="control cells per context, or none")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the default")
    parser.add_argument("--kind", choices=("singles", "pairs"), default="singles")
    parser.add_argument("--method", choices=("cosine", "wtcs"), default="cosine")
    parser.add_argument("--data", choices=tuple(DATA), default="papalexi")
    parser.add_argument("--out", default="effects.h5ad", help="effects: file written")
    parser.add_argument("--against", default=None, help="effects: file to compare with")
    args = parser.parse_args(argv)
    global DATA_NAME, CONTEXT, QUERY
    DATA_NAME, CONTEXT, QUERY = DATA[args.data]
    steps = {"fit": fit, "accuracy": accuracy, "screen": screen, "effects": effects}
    if args.step in steps:
        steps[args.step](args)
    else:
        _screen(args, pairs=args.step == "pairs")


if __name__ == "__main__":
    sys.exit(main())
