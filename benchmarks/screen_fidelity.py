"""Screens agree with experiment: a screen's ranking from held-out predictions against the
ranking the measured effects give (issue 18).

``papalexi``
    Papalexi 2021 THP-1 (``papalexi2021-heldout-ko`` folds: 5 folds over the 25 knockouts,
    every knockout predicted while held out, GO + STRING prior features for the embedding
    models; predictions: ``_bench18_cells.py``). The screen: lower the interferon-gamma /
    JAK-STAT programme, scored as the ``ulm`` activity of PROGENy's JAK-STAT footprint over the
    panel's genes (:func:`celltwin.explain.activity`, as ``explain_papalexi.py`` measured it;
    lower = better). Secondary readouts: MSigDB Hallmark INTERFERON_GAMMA_RESPONSE (weights 1)
    and DoRothEA's STAT1 and IRF1 regulons. Figure: Spearman between the scores of the
    predicted and of the measured effects over the knockouts, with a bootstrap CI over
    knockouts; paired bootstrap (same resamples) of the difference between models.
``kang``
    Kang 2018 (``kang2018-heldout-celltype``: 7 folds, one cell type's IFN-beta response held
    out). Reverse screens, query = one cell type's measured IFN-beta signature. (1) Every cell
    type's response predicted while held out (its own fold), screened for each of the 7 queries
    on the genes all folds share: Spearman of the predicted vs the measured candidates' scores
    over the 7 candidates, per query, mean with a bootstrap CI over queries. (2) Fold k's own
    screen: query = cell type k's measured signature, candidates = the 7 responses, k's
    predicted and the others measured: rank of k's predicted response under ``mimic``
    (1 of 7 is right; equivalently last under ``reverse``).

    PYTHONPATH=src nice -n 10 python benchmarks/screen_fidelity.py papalexi|kang
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))

from _bench18_cells import load_fold
from _bench18_rank import mean_ci, paired, rank_of_true, score_candidates
from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin.benchmark import get_suite
from celltwin.explain import activity
from celltwin.priors import read_gene_sets

try:  # celltwin.screen lands during issue 18
    from celltwin.screen import get_objective
except ImportError:
    get_objective = None

PAPALEXI_SUITE = "papalexi2021-heldout-ko"
PAPALEXI_MODELS = ("transition", "nearest_perturbation", "linear", "mean")
KANG_SUITE = "kang2018-heldout-celltype"
KANG_MODELS = ("transition", "context_shift", "mean")
HALLMARK = "HALLMARK_INTERFERON_GAMMA_RESPONSE"
N_BOOT = 2000


# --- the objective (one call, swappable for celltwin.screen's ``move``) ----------------------


def programme_scores(effects: pd.DataFrame) -> pd.DataFrame:
    """TEMPORARY ``move`` objective (until ``celltwin.screen`` lands): per effect row, the
    negated ``ulm`` activity of each IFN-gamma readout (higher = the programme lowered more)."""
    progeny = activity(effects, net="progeny").scores
    genes = read_gene_sets(name="hallmark")[HALLMARK]
    net = pd.DataFrame({"source": HALLMARK, "target": genes, "weight": 1.0})
    hallmark = activity(effects, net=net).scores
    dorothea = activity(effects, net="dorothea", min_size=3).scores
    out: dict[str, pd.Series] = {
        "JAK-STAT (PROGENy)": progeny["JAK-STAT"],
        "IFN-gamma (Hallmark)": hallmark[HALLMARK],
    }
    for tf in ("STAT1", "IRF1"):  # regulons with >= 3 targets on the panel only
        if tf in dorothea.columns:
            out[f"{tf} (DoRothEA)"] = dorothea[tf]
    frame = -pd.DataFrame(out)
    for name, params in screen_move_objectives().items():
        obj = get_objective("move", **params)
        frame[name] = obj.score(effects.to_numpy(dtype=np.float64), list(effects.columns))
    return frame


def screen_move_objectives() -> dict[str, dict]:
    """``celltwin.screen``'s ``move`` objective on the same readouts, once the package exists."""
    if get_objective is None:
        return {}
    base = {"net": "progeny", "pathway": "JAK-STAT", "toward": "down"}
    return {
        "screen move JAK-STAT down (penalty 1)": {**base, "penalty": 1.0},
        "screen move JAK-STAT down (penalty 0)": {**base, "penalty": 0.0},
        "screen move STAT1 regulon down (penalty 1)": {
            "net": "dorothea", "pathway": "STAT1", "toward": "down", "penalty": 1.0,
        },
    }  # fmt: skip


def boot_spearman(
    pred: dict[str, np.ndarray], truth: np.ndarray, *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Spearman of each model's scores with ``truth`` on N_BOOT resamples of the units (the
    same resamples for every model, so differences are paired)."""
    rng = np.random.default_rng(seed)
    n = truth.size
    idx = rng.integers(0, n, size=(N_BOOT, n))
    out = {}
    for name, x in pred.items():
        out[name] = np.array([stats.spearmanr(x[i], truth[i]).statistic for i in idx])
    return out


def fmt(point: float, boots: np.ndarray) -> str:
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return f"{point:+.3f} [{lo:+.3f}, {hi:+.3f}]"


# --- Papalexi ---------------------------------------------------------------------------------


def papalexi_tables() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Measured effects and each model's held-out predictions (one row per knockout)."""
    measured, preds = None, {m: [] for m in PAPALEXI_MODELS}
    for fold in get_suite(PAPALEXI_SUITE).folds():
        meas, fold_preds = load_fold(PAPALEXI_SUITE, fold, list(PAPALEXI_MODELS))
        if measured is None:
            measured = pd.DataFrame(
                np.asarray(meas.X), index=meas.obs[PERTURBATION].astype(str), columns=meas.var_names
            )
        for m, p in fold_preds.items():
            assert list(p.var_names) == list(measured.columns)
            preds[m].append(
                pd.DataFrame(
                    np.asarray(p.X), index=p.obs[PERTURBATION].astype(str), columns=p.var_names
                )
            )
    assert measured is not None
    tables = {m: pd.concat(v).loc[measured.index] for m, v in preds.items()}
    return measured, tables


def papalexi() -> None:
    measured, tables = papalexi_tables()
    truth = programme_scores(measured)
    scored = {m: programme_scores(t.dropna()).reindex(truth.index) for m, t in tables.items()}
    refused = {m: int(t.isna().all(axis=1).sum()) for m, t in tables.items()}
    print(f"Papalexi: {len(truth)} knockouts, {measured.shape[1]} genes; refused: {refused}")
    for readout in truth.columns:
        keep = np.all([scored[m][readout].notna() for m in PAPALEXI_MODELS], axis=0)
        t = truth[readout].to_numpy()[keep]
        x = {m: scored[m][readout].to_numpy()[keep] for m in PAPALEXI_MODELS}
        boots = boot_spearman(x, t)
        print(f"\n{readout} ({keep.sum()} knockouts every model predicts)")
        print("| model | Spearman [95% CI] | transition − model [95% CI] |\n|---|---|---|")
        for m in PAPALEXI_MODELS:
            point = stats.spearmanr(x[m], t).statistic
            diff = stats.spearmanr(x["transition"], t).statistic - point
            d = fmt(diff, boots["transition"] - boots[m]) if m != "transition" else ""
            print(f"| {m} | {fmt(point, boots[m])} | {d} |")
    print("\nSplit-half ceiling of the measured ranking (each knockout's and the control cells")
    print("halved at random, 20 splits; Spearman of the halves' scores over the 25 knockouts):")
    for readout, rhos in split_half(truth.columns).items():
        print(
            f"  {readout}: {np.mean(rhos):+.3f} (splits {np.min(rhos):+.3f} to {np.max(rhos):+.3f})"
        )
    primary = truth.columns[0]
    order = truth[primary].sort_values(ascending=False).index
    table = pd.DataFrame({"measured": truth[primary]})
    for m in PAPALEXI_MODELS:
        table[m] = scored[m][primary]
    print(f"\nScores per knockout ({primary}, negated: higher = programme lowered more):")
    print(table.loc[order].round(2).to_markdown())


def split_half(readouts: pd.Index, n_splits: int = 20) -> dict[str, list[float]]:
    """Spearman between the readout scores of two random halves of the measured cells."""
    cells = get_suite(PAPALEXI_SUITE).task.data({})
    x = cells.X.toarray() if hasattr(cells.X, "toarray") else np.asarray(cells.X)
    labels = cells.obs[PERTURBATION].astype(str)
    groups = labels.groupby(labels).indices
    rng = np.random.default_rng(0)
    out: dict[str, list[float]] = {r: [] for r in readouts}
    for _ in range(n_splits):
        halves: list[dict[str, np.ndarray]] = [{}, {}]
        for p, idx in groups.items():
            perm = rng.permutation(idx)
            halves[0][p] = x[perm[: idx.size // 2]].mean(axis=0)
            halves[1][p] = x[perm[idx.size // 2 :]].mean(axis=0)
        a, b = (
            programme_scores(
                pd.DataFrame(
                    {p: m - h[CONTROL] for p, m in h.items() if p != CONTROL},
                    index=list(map(str, cells.var_names)),
                ).T
            )
            for h in halves
        )
        for r in readouts:
            out[r].append(stats.spearmanr(a[r], b[r]).statistic)
    return out


# --- Kang -------------------------------------------------------------------------------------


def kang_frames() -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict[str, tuple]]:
    """Measured IFN-beta effects of the 7 cell types and each model's held-out predictions, on
    the genes every fold shares; and per fold its own genes' (measured, predictions)."""
    folds = get_suite(KANG_SUITE).folds()
    per_fold = {f: load_fold(KANG_SUITE, f, list(KANG_MODELS)) for f in folds}
    shared = sorted(set.intersection(*(set(map(str, m.var_names)) for m, _ in per_fold.values())))
    measured = None
    preds: dict[str, dict[str, np.ndarray]] = {m: {} for m in KANG_MODELS}
    for f, (meas, fp) in per_fold.items():
        frame = pd.DataFrame(
            np.asarray(meas.X), index=meas.obs[CONTEXT].astype(str), columns=meas.var_names
        )
        if measured is None:
            measured = frame[shared]
        for m, p in fp.items():
            assert list(p.obs[CONTEXT].astype(str)) == [f]
            preds[m][f] = pd.Series(np.asarray(p.X)[0], index=p.var_names)[shared].to_numpy()
    assert measured is not None
    tables = {m: pd.DataFrame(v, index=shared).T.loc[measured.index] for m, v in preds.items()}
    return measured, tables, per_fold


def kang() -> None:
    measured, tables, per_fold = kang_frames()
    types = list(measured.index)
    genes = list(measured.columns)
    print(f"Kang: {len(types)} cell types, {len(genes)} genes shared by every fold's HVGs")
    for method in ("cosine", "pearson", "wtcs"):
        rows = []
        for q in types:
            query = measured.loc[q].to_numpy()
            truth = score_candidates(
                query, measured.to_numpy(), genes, method=method, objective="reverse"
            )
            for m, t in tables.items():
                s = score_candidates(query, t.to_numpy(), genes, method=method, objective="reverse")
                rho = stats.spearmanr(s, truth).statistic if np.ptp(s) > 0 else np.nan
                rows.append({"query": q, "model": m, "spearman": rho})
        res = pd.DataFrame(rows).pivot(index="query", columns="model", values="spearman")
        print(f"\n(1) {method}: Spearman over the 7 predicted vs measured candidates, per query")
        print(res.round(3).to_markdown())
        print("| model | mean Spearman [CI over queries] | transition − model |\n|---|---|---|")
        for m in KANG_MODELS:
            d = paired(res["transition"].to_numpy(), res[m].to_numpy()) if m != "transition" else ""
            print(f"| {m} | {mean_ci(res[m].to_numpy())} | {d} |")
        kang_own(per_fold, method)


def kang_own(per_fold: dict[str, tuple], method: str) -> None:
    """(2) Each fold's own screen: the rank of the held-out cell type's predicted response."""
    rows = []
    for f, (meas, fp) in per_fold.items():
        contexts = list(meas.obs[CONTEXT].astype(str))
        x = np.asarray(meas.X, dtype=np.float64)
        genes = list(map(str, meas.var_names))
        k = contexts.index(f)
        for m, p in fp.items():
            cand = x.copy()
            cand[k] = np.asarray(p.X, dtype=np.float64)[0]
            s = score_candidates(x[k], cand, genes, method=method, objective="mimic")
            rows.append({"fold": f, "model": m, **rank_of_true(s, k)})
    res = pd.DataFrame(rows)
    piv = res.pivot(index="fold", columns="model", values="rank")
    print(f"\n(2) {method}: rank (of 7) of the held-out cell type's predicted response, own query")
    print(piv.round(1).to_markdown())
    print("| model | top-1 share [CI over folds] | mean rank | transition − model (MRR) |")
    print("|---|---|---|---|")
    for m in KANG_MODELS:
        g = res[res["model"] == m].set_index("fold").sort_index()
        t = res[res["model"] == "transition"].set_index("fold").sort_index()
        d = paired(t["rr"].to_numpy(), g["rr"].to_numpy()) if m != "transition" else ""
        print(f"| {m} | {mean_ci(g['top1'].to_numpy())} | {g['rank'].mean():.2f} | {d} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("papalexi", "kang"))
    args = parser.parse_args()
    papalexi() if args.task == "papalexi" else kang()


if __name__ == "__main__":
    main()
