"""A per-cell response map trained like State, against ``transition``'s kernel transfer, on Kang 2018.

Question: does State's edge on the B and CD14 monocyte folds of ``kang2018-heldout-celltype``
(top-20 DE PearsonΔ 0.969 and 0.963 vs ``transition``'s 0.933 and 0.939) come from learning,
per cell, how a cell's own state shapes its response? If so, a network that maps each control
cell to its IFN-beta response, trained on every training cell type at once with a distribution
loss (no leave-one-type-out examples, the way State trains), should reproduce it.

For each fold (one cell type's stimulated cells held out), a small MLP maps a control cell
``x`` (its PCA coordinates, PCA fit on the training controls; or, with ``--input genes``, its
log1p expression) to a gene-space change ``f(x)``; generated cells are ``x + f(x)``. Each step
samples 128 control and 128 stimulated cells of every training type and minimises the energy
distance between generated and stimulated cells in the PCA space plus their squared mean gap in
gene space. The held-out type's effect estimate is the mean of ``f`` over its control cells.
It is scored, as ``kang_transfer_variants.py`` scores the classical estimates, by Pearson r
with the true effect on the truth's top-20 DE genes (Welch t) and on all genes, beside
``transition``'s kernel transfer and the equal-weight average of both.

    .venv/bin/python benchmarks/kang_cellmap.py [--folds B CD14_Mono] [--input genes] > cellmap.md

Takes about 50 s per fold (75 s with ``--input genes``) on one CPU thread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

sys.path.insert(0, str(Path(__file__).resolve().parent))
from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin.benchmark import get_suite
from kang_transfer_variants import SUITE, Fold, dense


def energy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Energy distance between two sets of points (V-statistic)."""
    return 2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean()


def cellmap_effect(
    fold: str, *, steps: int, hidden: int, n_pcs: int, genes_in: bool, seed: int
) -> np.ndarray:
    """Mean predicted change of the held-out type's control cells under the learned map."""
    torch.manual_seed(seed)
    data = get_suite(SUITE).task.fold_data(fold)
    x = dense(data.train.X).astype(np.float32)
    ctx = data.train.obs[CONTEXT].astype(str).to_numpy()
    ctrl = data.train.obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    pca = PCA(n_pcs, random_state=seed).fit(x[ctrl])
    comp, mu = torch.tensor(pca.components_), torch.tensor(pca.mean_)

    def encode(cells: torch.Tensor) -> torch.Tensor:
        return (cells - mu) @ comp.T

    sources = sorted(set(ctx[~ctrl]))
    controls = {c: torch.tensor(x[ctrl & (ctx == c)]) for c in sources}
    stimulated = {c: torch.tensor(x[~ctrl & (ctx == c)]) for c in sources}
    n_in = x.shape[1] if genes_in else n_pcs
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden),
        torch.nn.GELU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.GELU(),
        torch.nn.Linear(hidden, x.shape[1]),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(steps):
        loss = torch.zeros(())
        for c in sources:
            xc = controls[c][torch.randint(len(controls[c]), (128,))]
            xs = stimulated[c][torch.randint(len(stimulated[c]), (128,))]
            gen = xc + net(xc if genes_in else encode(xc))
            loss = loss + energy(encode(gen), encode(xs)) + ((gen.mean(0) - xs.mean(0)) ** 2).sum()
        opt.zero_grad()
        (loss / len(sources)).backward()
        opt.step()
    with torch.no_grad():
        q = torch.tensor(dense(data.query.X).astype(np.float32))
        return net(q if genes_in else encode(q)).mean(0).double().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", nargs="*", default=None, help="default: all cell types")
    parser.add_argument("--input", choices=("pcs", "genes"), default="pcs")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folds = args.folds or get_suite(SUITE).folds()
    rows = {}
    for fold in folds:
        print(f"{fold} ...", file=sys.stderr, flush=True)
        f = Fold(fold)
        kernel = f.estimates(f.query, f.latent, f.sources)["kernel"]
        cellmap = cellmap_effect(
            fold,
            steps=args.steps,
            hidden=args.hidden,
            n_pcs=50,
            genes_in=args.input == "genes",
            seed=args.seed,
        )
        found = {"kernel": kernel, "cellmap": cellmap, "average": (kernel + cellmap) / 2}
        rows[fold] = {
            f"{name}, {scope}": np.corrcoef(v[genes], f.true[genes])[0, 1]
            for name, v in found.items()
            for scope, genes in (("top-20", f.top), ("all", slice(None)))
        }
    table = pd.DataFrame(rows).T
    table.loc["mean"] = table.mean()
    print(f"\n### Pearson r with the true effect (input {args.input}, seed {args.seed})\n")
    print(table.round(3).to_markdown())


if __name__ == "__main__":
    main()
