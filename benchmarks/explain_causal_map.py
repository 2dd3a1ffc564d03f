"""Causal map on the simulator (issue 19, point 5): precision and recall against the true network,
compared with a correlation network computed from the same cells, with CIs over simulated worlds.

Each world is :func:`celltwin.simulate.simulate` with its own seed (its own network, knockouts and
cells). Both maps are called at FDR < 0.05 and scored with :func:`celltwin.explain.score_map`
against (a) the true direct TF -> gene edges and (b) every gene a knocked-out target reaches
through the network (direct + indirect effects). "matched" scores the correlation network's
top-k pairs (by p-value) with k = the causal map's number of calls, so the comparison does not
hinge on the threshold. Threshold-free: the average precision (area under the precision-recall
curve of every tested pair ranked by p-value, :func:`celltwin.explain.precision_recall`) of both
maps, and ``causal_top_k``: the causal map's k best pairs with k = the number of edges the
correlation network calls at the FDR, scored against those calls (same budget, so precision and
recall move together). With ``--grn dorothea`` the worlds are DoRothEA subnetworks with real gene
symbols, and the causal map is also scored against all of DoRothEA (A-C) and STRING (>= 700)
where they overlap the measured genes.

    PYTHONPATH=src nice -n 10 python benchmarks/explain_causal_map.py --worlds 20 --out /tmp/cm.csv
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from celltwin.eval import paired_comparison, summarize
from celltwin.explain import CausalMap, causal_map, correlation_map, precision_recall, score_map
from celltwin.simulate import simulate


def _matched(corr: CausalMap, k: int, alpha: float) -> CausalMap:
    """The correlation map's k best pairs (combined over contexts like the edges)."""
    return CausalMap(corr.tests, correlation_edges_all(corr).head(k), alpha, {})


def correlation_edges_all(corr: CausalMap) -> pd.DataFrame:
    g = corr.tests.groupby(["source", "target"], sort=True)
    table = g.agg(delta=("delta", "mean"), pvalue=("pvalue", "min"), n=("pvalue", "size"))
    table = table.reset_index().assign(p=lambda t: t["pvalue"] * t["n"])
    table["sign"] = np.sign(table["delta"]).astype(int)
    return table.sort_values(["p", "source", "target"], kind="stable").reset_index(drop=True)


def one_world(seed: int, grn: str, alpha: float) -> list[dict[str, object]]:
    sim = simulate(
        n_genes=200, n_tfs=20, n_perturbations=15, combinations=0,
        cells_per_condition=100, grn=grn, seed=seed,
    )  # fmt: skip
    cmap, corr = causal_map(sim.adata, alpha=alpha), correlation_map(sim.adata, alpha=alpha)
    maps = {
        "causal_map": cmap,
        "correlation": corr,
        "correlation_matched": _matched(corr, len(cmap.edges), alpha),
    }
    rows, k = [], len(corr.edges)
    for name, m in maps.items():
        for truth, reach in (("direct", False), ("reach", True)):
            score = score_map(m, sim.grn, reach=reach).to_dict()
            if name in ("causal_map", "correlation"):
                pr = precision_recall(m, sim.grn, reach=reach)
                score["average_precision"] = pr.average_precision
            rows.append({"world": seed, "map": name, "truth": truth, **score})
            if name == "causal_map":  # its k best pairs at the correlation's budget
                top = {**pr.at(k).drop("k").to_dict(), "k": k}
                rows.append({"world": seed, "map": "causal_top_k", "truth": truth, **top})
    if grn == "dorothea":
        rows += _prior_scores(seed, cmap)
    return rows


def _prior_scores(seed: int, cmap: CausalMap) -> list[dict[str, object]]:
    from celltwin.priors import read_dorothea, read_string

    dorothea = read_dorothea(confidence="ABC").rename(columns={"tf": "source", "mor": "sign"})
    string = read_string().rename(columns={"gene_a": "source", "gene_b": "target"})
    return [
        {"world": seed, "map": "causal_map", "truth": "dorothea_ABC",
         **score_map(cmap, dorothea, overlap=True).to_dict()},
        {"world": seed, "map": "causal_map", "truth": "string_700",
         **score_map(cmap, string, overlap=True, directed=False).to_dict()},
    ]  # fmt: skip


def report(table: pd.DataFrame) -> str:
    lines = ["map | truth | metric | mean | 95% CI | n worlds", "---|---|---|---|---|---"]
    for (m, truth), g in table.groupby(["map", "truth"], sort=False):
        for metric in ("precision", "recall", "f1", "sign_agreement", "average_precision"):
            s = summarize(g[metric].to_numpy(dtype=float))
            if s.n:
                lines.append(
                    f"{m} | {truth} | {metric} | {s.mean:.3f} | [{s.ci_low:.3f}, {s.ci_high:.3f}]"
                    f" | {s.n}"
                )
    lines += ["", "paired over worlds: causal_map minus correlation (mean [95% CI])"]
    for truth in ("direct", "reach"):
        for other in ("correlation", "correlation_matched"):
            for metric in ("precision", "recall", "f1"):
                a = table[(table["map"] == "causal_map") & (table["truth"] == truth)]
                b = table[(table["map"] == other) & (table["truth"] == truth)]
                c = paired_comparison(a[metric].to_numpy(float), b[metric].to_numpy(float),
                                      higher_is_better=True)  # fmt: skip
                lines.append(
                    f"{truth} {metric} vs {other}: {c.mean_diff:+.3f} "
                    f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}] (causal better in {c.share_a_better:.0%} of worlds, "
                    f"Wilcoxon p={c.wilcoxon_p:.2g})"
                )
    return "\n".join(lines + ranked_report(table))


def _pair(table: pd.DataFrame, a: str, b: str, truth: str, metric: str) -> str:
    """causal-side map ``a`` minus ``b`` on ``metric`` over worlds, and worlds won."""
    x, y = (table[(table["map"] == m) & (table["truth"] == truth)].groupby("world")[metric].first()
            for m in (a, b))  # fmt: skip
    c = paired_comparison(x.to_numpy(float), y.reindex(x.index).to_numpy(float),
                          higher_is_better=True)  # fmt: skip
    won = round(c.share_a_better * c.n)
    return (
        f"{truth} {metric}: {a} {x.mean():.3f} vs {b} {y.mean():.3f}, diff {c.mean_diff:+.3f} "
        f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}], {a} better in {won}/{c.n} worlds "
        f"(Wilcoxon p={c.wilcoxon_p:.2g})"
    )


def ranked_report(table: pd.DataFrame) -> list[str]:
    """Threshold-free lines: average precision, and both maps at the correlation's budget."""
    if "average_precision" not in table.columns:
        return []
    lines = ["", "threshold-free (mean [95% CI] of the paired difference over worlds)"]
    for truth in ("direct", "reach"):
        lines.append(_pair(table, "causal_map", "correlation", truth, "average_precision"))
        for metric in ("precision", "recall", "f1"):
            lines.append(_pair(table, "causal_top_k", "correlation", truth, metric))
    k = table.loc[table["map"] == "causal_top_k", "k"]
    lines.append(f"k (correlation calls at the FDR) per world: median {k.median():.0f}, "
                 f"range {k.min():.0f}-{k.max():.0f}")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=20)
    parser.add_argument("--grn", choices=["random", "dorothea"], default="random")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out", default=None, help="CSV of every world's scores")
    args = parser.parse_args()
    start, rows = time.time(), []
    for seed in range(args.worlds):
        rows += one_world(seed, args.grn, args.alpha)
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    print(report(table))
    print(f"\n{args.worlds} worlds ({args.grn} networks) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
