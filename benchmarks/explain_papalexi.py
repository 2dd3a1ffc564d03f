"""Papalexi 2021 (THP-1 ECCITE-seq, 299 genes): do the IFN-gamma pathway knockouts lose the readout?

Per knockout and biological replicate (obs ``batch`` = ``bio_rep``, 3 replicates), the effect is
the knockout cells' pseudobulk mean minus the same replicate's non-targeting mean
(:func:`celltwin.pp.pseudobulk` with ``match_batch=True``), scored with
:func:`celltwin.explain.activity` (``ulm``) on two readouts: PROGENy's JAK-STAT footprint (top 500
genes per pathway) and MSigDB Hallmark's INTERFERON_GAMMA_RESPONSE set (weights 1). Reported per
replicate for IFNGR1, IFNGR2, JAK2 and STAT1, with a one-sided one-sample t-test over the three
replicates, each knockout's rank among all 25 knockouts (mean over replicates), and a null: the
same score of non-targeting cells against non-targeting cells (each replicate's NT cells split
in random halves, 50 splits), which says how large a score noise alone gives on this panel.

    PYTHONPATH=src .venv/bin/python benchmarks/explain_papalexi.py
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

from celltwin import data, pp
from celltwin._keys import BATCH, CONTEXT, CONTROL, PERTURBATION
from celltwin.explain import activity
from celltwin.priors import read_gene_sets

KOS = ("IFNGR1", "IFNGR2", "JAK2", "STAT1")
HALLMARK = "HALLMARK_INTERFERON_GAMMA_RESPONSE"


def readouts(effects: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """JAK-STAT (PROGENy) and IFN-gamma response (Hallmark) ulm scores and p-values of each
    effect row, and the readouts' measured genes."""
    progeny = activity(effects, net="progeny")
    genes = read_gene_sets(name="hallmark")[HALLMARK]
    net = pd.DataFrame({"source": HALLMARK, "target": genes, "weight": 1.0})
    hallmark = activity(effects, net=net)
    return pd.DataFrame(
        {
            "JAK-STAT": progeny.scores["JAK-STAT"],
            "JAK-STAT p": progeny.pvalues["JAK-STAT"],
            "IFNG set": hallmark.scores[HALLMARK],
            "IFNG set p": hallmark.pvalues[HALLMARK],
        }
    ), pd.Series({"JAK-STAT": progeny.sizes["JAK-STAT"], "IFNG set": hallmark.sizes[HALLMARK]})


def null_scores(cells: ad.AnnData, n_splits: int = 50) -> pd.DataFrame:
    """Scores of NT-vs-NT effects: each replicate's control cells split in random halves."""
    rng = np.random.default_rng(0)
    rows, names = [], []
    control = cells[cells.obs[PERTURBATION] == CONTROL]
    for rep in sorted(control.obs[BATCH].unique()):
        x = control[control.obs[BATCH] == rep].X
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        for i in range(n_splits):
            half = rng.permutation(len(x)) < len(x) // 2
            rows.append(x[half].mean(axis=0) - x[~half].mean(axis=0))
            names.append(f"{rep}/{i}")
    return pd.DataFrame(np.vstack(rows), index=names, columns=list(map(str, cells.var_names)))


def main() -> None:
    cells = data.load("papalexi2021_subset", progress=False)
    bulk = pp.pseudobulk(cells, by=[CONTEXT, PERTURBATION, BATCH], match_batch=True)
    obs = bulk.obs
    keep = (obs[PERTURBATION] != CONTROL).to_numpy()
    effects = pd.DataFrame(
        bulk.layers["delta"][keep],
        index=[f"{p}/{b}" for p, b in zip(obs[PERTURBATION][keep], obs[BATCH][keep], strict=True)],
        columns=list(map(str, bulk.var_names)),
    )
    scores, sizes = readouts(effects)
    print(f"measured targets of the 299-gene panel: {sizes.to_dict()}")
    scores["knockout"] = [i.split("/")[0] for i in scores.index]
    scores["replicate"] = [i.split("/")[1] for i in scores.index]
    scores["cells"] = bulk.obs["n_cells"].to_numpy()[keep]
    print("\nPer knockout and replicate (effect vs the same replicate's non-targeting cells):\n")
    table = scores[scores["knockout"].isin(KOS)]
    print(table.to_markdown(floatfmt=".3g"))
    means = scores.groupby("knockout")[["JAK-STAT", "IFNG set"]].mean()
    ranks = means.rank(ascending=True)  # 1 = most lowered
    null, _ = readouts(null_scores(cells))
    print("\nNull (NT vs NT halves, 50 splits per replicate): "
          + ", ".join(f"{c} sd {null[c].std():.2f}, 1st-99th pct [{null[c].quantile(0.01):.2f}, "
                      f"{null[c].quantile(0.99):.2f}]" for c in ("JAK-STAT", "IFNG set")))  # fmt: skip
    print(
        "\n| knockout | readout | replicates (mean) | t-test mean < 0, p | rank of 25 (1 = most lowered) | replicates below the null's 1st pct |"
    )
    print("|---|---|---|---|---|---|")
    for ko in KOS:
        for col in ("JAK-STAT", "IFNG set"):
            v = table.loc[table["knockout"] == ko, col].to_numpy()
            p = stats.ttest_1samp(v, 0.0, alternative="less").pvalue
            below = int((v < null[col].quantile(0.01)).sum())
            print(f"| {ko} | {col} | {', '.join(f'{x:.2f}' for x in v)} ({v.mean():.2f}) | "
                  f"{p:.2g} | {int(ranks.loc[ko, col])} | {below}/{len(v)} |")  # fmt: skip
    print("\nOther knockouts, mean over replicates (lowest first):")
    print(means.sort_values("JAK-STAT").round(2).to_markdown())


if __name__ == "__main__":
    main()
