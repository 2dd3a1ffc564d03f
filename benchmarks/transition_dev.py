"""Development benchmark of ``transition`` on Kang 2018, held-out cell type (IFN-beta).

For each cell type (fold): its IFN-beta stimulated cells are the test set, everything else
(all control cells, the stimulated cells of the other types) is training data. 2,000 highly
variable genes are selected on the training cells only (scanpy ``seurat`` flavour on log data).
Each model is fitted, predicts the held-out condition from the fold's control cells (as many
cells as the truth has), and is scored:

``pd_all``
    Pearson of predicted vs true change of the mean from the fold's control mean, all genes.
``pd_top20``
    The same on the top-20 DE genes of true stimulated vs control (Welch t, as GEARS;
    :func:`celltwin.eval._de.welch_t_test` + :func:`~celltwin.eval._de.top_de_genes`).
``energy``
    Energy distance between predicted and true cells in a 50-PC space fitted on the true
    stimulated + control cells of the fold (:func:`celltwin.eval._metrics.fit_pca`).
``r2``
    Squared Pearson of predicted and true mean expression over genes (scGen's R²).
``coverage``
    ``transition`` only: fraction of genes whose true effect lies in the predicted interval
    (:meth:`TransitionModel.predict_effects`, nominal 0.9).

``linear`` is not applicable (it refuses contexts without perturbed training cells); ``mean``
equals ``context_shift`` up to the cell draw when there is one perturbation, and is reported.

Usage::

    python benchmarks/transition_dev.py                     # celltwin.data.load("kang2018")
    python benchmarks/transition_dev.py --data scgen        # shared scGen copy (1,975 cells)
    python benchmarks/transition_dev.py --data path.h5ad --folds CD4_T B --param n_members=3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TRAIN
from celltwin._settings import shared_dir
from celltwin.eval import top_de_genes, welch_t_test
from celltwin.eval._metrics import energy_distance, fit_pca, pearson_delta, pearson_delta_top_de
from celltwin.eval._stats import paired_comparison
from celltwin.models import UnseenConditionError, conditions_of, get_model
from celltwin.models._transition import TransitionModel
from celltwin.split import split_contexts

BASELINES = ("context_shift", "mean", "linear")
METRICS = ("pd_all", "pd_top20", "energy", "r2", "coverage", "fit_s")


def load_data(which: str) -> ad.AnnData:
    if which == "kang2018":
        from celltwin.data import load

        return load("kang2018")
    if which == "scgen":
        import celltwin.io as cio

        return cio.read(shared_dir() / "data" / "kang2018_scgen_valid.h5ad")
    import celltwin.io as cio

    return cio.read(Path(which))


def _dense(x: np.ndarray | sp.spmatrix) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)


def fold_data(adata: ad.AnnData, context: str, *, n_hvg: int) -> ad.AnnData:
    """The fold's split, restricted to HVGs selected on its training cells."""
    a = ad.AnnData(X=adata.X, obs=adata.obs[[CONTEXT, PERTURBATION, "perturbation_type"]].copy())
    a.var_names = adata.var_names
    if "dose" in adata.obs:
        a.obs["dose"] = adata.obs["dose"]
    split_contexts(a, test=context)
    train = a[a.obs[SPLIT].to_numpy() == TRAIN]
    hv = sc.pp.highly_variable_genes(
        ad.AnnData(X=train.X.copy(), var=pd.DataFrame(index=train.var_names)),
        n_top_genes=n_hvg,
        flavor="seurat",
        inplace=False,
    )
    genes = a.var_names[hv["highly_variable"].to_numpy()]
    return a[:, genes].copy()


def score(
    pred: np.ndarray, ctrl: np.ndarray, true: np.ndarray, basis, top: np.ndarray
) -> dict[str, float]:
    pm, tm, cm = pred.mean(0), true.mean(0), ctrl.mean(0)
    return {
        "pd_all": float(pearson_delta((pm - cm)[None], (tm - cm)[None])[0]),
        "pd_top20": float(pearson_delta_top_de(pm[None], tm[None], true_control=cm, top_de=top)[0]),
        "energy": float(energy_distance([basis.transform(pred)], [basis.transform(true)])[0]),
        "r2": float(np.corrcoef(pm, tm)[0, 1] ** 2),
    }


def run_fold(adata: ad.AnnData, context: str, *, n_hvg: int, params: dict, seed: int) -> list[dict]:
    a = fold_data(adata, context, n_hvg=n_hvg)
    obs = a.obs
    in_ctx = obs[CONTEXT].astype(str).to_numpy() == context
    is_ctrl = obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    test = obs[SPLIT].astype(str).to_numpy() != TRAIN
    ctrl, true = _dense(a.X[in_ctx & is_ctrl]), _dense(a.X[in_ctx & test])
    labels = np.array([CONTROL] * len(ctrl) + ["stim"] * len(true))
    top = top_de_genes(welch_t_test(np.vstack([ctrl, true]), labels).statistic, k=20)
    basis = fit_pca(np.vstack([true, ctrl]), n_components=50, seed=0)
    conditions = conditions_of(a, split="test")
    rows = []
    models = {"transition": TransitionModel(seed=seed, **params)}
    models.update({name: get_model(name) for name in BASELINES})
    for name, model in models.items():
        start = time.perf_counter()
        try:
            model.fit(a)
            fit_s = time.perf_counter() - start
            pred = _dense(model.predict(a, conditions=conditions, seed=seed).X)
        except UnseenConditionError:
            rows.append({"fold": context, "model": name, "note": "not applicable"})
            continue
        if model.predicts == "pseudobulk":
            rows.append({"fold": context, "model": name, "note": "pseudobulk"})
            continue
        row = {"fold": context, "model": name, **score(pred, ctrl, true, basis, top)}
        row["fit_s"] = fit_s
        if isinstance(model, TransitionModel):
            eff = model.predict_effects(a, conditions=conditions, seed=seed)
            truth = true.mean(0) - ctrl.mean(0)
            lo, hi = eff.layers["lower"][0], eff.layers["upper"][0]
            row["coverage"] = float(np.mean((truth >= lo) & (truth <= hi)))
            row["tau"] = model.tau_
            row["steps"] = [m["best_step"] for m in model.training_]
        rows.append(row)
        print(
            f"  {context:<14} {name:<14} "
            + " ".join(f"{k}={row[k]:.3f}" for k in METRICS if k in row),
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="kang2018", help="kang2018, scgen or an .h5ad path")
    parser.add_argument("--folds", nargs="*", help="cell types to hold out (default: all)")
    parser.add_argument("--min-cells", type=int, default=50, help="skip smaller test sets")
    parser.add_argument("--n-hvg", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param", action="append", default=[], help="transition KEY=VALUE")
    parser.add_argument("--out", help="write the per-fold table here (csv)")
    args = parser.parse_args()
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    params.setdefault("progress", False)
    adata = load_data(args.data)
    obs = adata.obs
    sizes = obs.loc[obs[PERTURBATION].astype(str) != CONTROL, CONTEXT].astype(str).value_counts()
    folds = args.folds or sorted(sizes.index[sizes >= args.min_cells])
    print(f"data {args.data}: {adata.n_obs} cells, folds {folds}", flush=True)
    rows = []
    for context in folds:
        rows += run_fold(adata, context, n_hvg=args.n_hvg, params=params, seed=args.seed)
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    scored = table[table.get("note", pd.Series(index=table.index)).isna()]
    cols = [c for c in METRICS if c in scored.columns]
    print("\nmean over folds:")
    print(scored.groupby("model")[cols].mean().round(4).to_string())
    wide = scored.pivot(index="fold", columns="model", values=["pd_top20", "energy"])
    wins_pd = (wide["pd_top20"]["transition"] > wide["pd_top20"]["context_shift"]).sum()
    wins_e = (wide["energy"]["transition"] < wide["energy"]["context_shift"]).sum()
    print(
        f"\ntransition beats context_shift on pd_top20 in {wins_pd}/{len(wide)} folds, "
        f"on energy in {wins_e}/{len(wide)} folds"
    )
    for metric, higher in (("pd_top20", True), ("energy", False)):
        cmp = paired_comparison(
            wide[metric]["transition"], wide[metric]["context_shift"], higher_is_better=higher
        )
        print(
            f"{metric}: transition - context_shift = {cmp.mean_diff:+.4f} "
            f"(paired bootstrap over folds, 95% CI [{cmp.ci_low:+.4f}, {cmp.ci_high:+.4f}])"
        )


if __name__ == "__main__":
    main()
