"""How far can a transfer between cell types go on Kang 2018? The best convex combination.

``transition``'s classical half predicts a held-out cell type's IFN-beta response as a weighted
mean of the training types' responses (weights from the similarity of their control cells).
Whatever the weights, such a prediction lies in the convex hull of the training responses. This
script finds, per fold of ``kang2018-heldout-celltype``, the weights that maximise the Pearson r
with the **true** effect on the truth's top-20 DE genes (Welch t): an oracle, since it looks at
the held-out truth, so it bounds every convex transfer from above. Beside it:

``kernel``  the kernel weights ``transition`` uses (bandwidth by leave-one-context-out);
``level``   per gene, a kernel-weighted ridge regression of the training types' effects on their
            own control level of that gene (mean log1p), read off at the held-out type's level:
            not convex, so it can leave the hull; the ridge is chosen per fold by
            leave-one-context-out squared error over the training types (never the test type);
``states``  ``transition``'s log-space transfer resolved to cell states (``cell_states=True``,
            :mod:`celltwin.models._transition._states`): each held-out control cell borrows the
            effects of the sub-states of its nearest training control cells. Not convex in the
            cell types' mean responses either: sub-states respond differently from their type.
``oracle``  the best convex combination (random Dirichlet search, then Nelder-Mead on softmax
            weights; the search may fall short of the true maximum, never above it).

With ``--results DIR`` (a merged benchmark folder with ``state`` and ``transition`` rows) it
adds both models' scores on the same folds.

A second table scores ``kernel`` and ``states`` the way ``transition`` can check itself: on
the training types only, each predicted from the others (leave-one-context-out, as the model
chooses its kernel bandwidth and fold-change shares), against each type's own top-20 DE genes;
the held-out type takes no part.

With ``--genes FOLD`` it also prints, for that fold's top-20 DE genes, the two halves of
``transition``'s context transfer (``states``, the log-space part; ``fold``, the fold change of
the held-out type's own expression), each gene's fold-change share and their blend: the classical
estimate the network then corrects.

    .venv/bin/python benchmarks/kang_transfer_bound.py [--results DIR] [--genes FOLD] > bound.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from celltwin.benchmark import get_suite
from celltwin.models._transition._estimator import _QueryContexts
from celltwin.models._transition._features import control_profile
from kang_transfer_variants import SUITE, TREATMENT, Fold

RIDGES = (0.03, 0.05, 0.1, 0.2, 0.3, 1.0)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def level(
    w: np.ndarray, delta: np.ndarray, level_src: np.ndarray, level_tgt: np.ndarray, ridge: float
) -> np.ndarray:
    """Kernel-weighted per-gene ridge regression of effects on the genes' control levels."""
    mean_delta, mean_level = w @ delta, w @ level_src
    dl, dd = level_src - mean_level, delta - mean_delta
    slope = (w[:, None] * dl * dd).sum(0) / ((w[:, None] * dl**2).sum(0) + ridge)
    return mean_delta + slope * (level_tgt - mean_level)


def oracle(delta: np.ndarray, true: np.ndarray, seed: int = 0) -> tuple[float, np.ndarray]:
    """Best convex weights for Pearson r with ``true`` (search; a lower bound of the maximum)."""
    rng = np.random.default_rng(seed)
    draws = rng.dirichlet(np.full(len(delta), 0.3), size=20000)
    scores = np.array([pearson(w @ delta, true) for w in draws])
    start = draws[int(np.argmax(scores))]

    def loss(v: np.ndarray) -> float:
        w = np.exp(v - v.max())
        return -pearson(w / w.sum() @ delta, true)

    found = minimize(loss, np.log(start + 1e-9), method="Nelder-Mead", options={"maxiter": 4000})
    w = np.exp(found.x - found.x.max())
    w /= w.sum()
    best = max(float(scores.max()), pearson(w @ delta, true))
    return best, w


def states_effect(f: Fold) -> np.ndarray:
    """The cell-state log-space transfer of the fold's one-member ``transition`` (its states
    come from fit; the held-out type's control cells are the targets)."""
    model = f.model
    query = _QueryContexts(model, f.query, np.full(len(f.query), f.name))
    transfer = model._transfer(extra=query.latents(), targets=query.cell_latents())
    parts = transfer.context_parts((f.name, *TREATMENT), f.latent)
    assert parts is not None
    return parts[0]


def loco_row(f: Fold) -> dict[str, float]:
    """Mean top-20 r over the training types, each predicted from the other training types."""
    transfer = f.model._transfer()
    kernel, states = [], []
    for c in f.sources:
        rest = [s for s in f.sources if s != c]
        w = f.weights(f.transfer.context_latent[c], rest)
        k = w @ np.vstack([f.delta[s] for s in rest])
        parts = transfer.context_parts((c, *TREATMENT), f.transfer.context_latent[c])
        assert parts is not None
        top = f.top_of[c]
        kernel.append(pearson(k[top], f.delta[c][top]))
        states.append(pearson(parts[0][top], f.delta[c][top]))
    return {"kernel": float(np.mean(kernel)), "states": float(np.mean(states))}


def gene_table(name: str) -> str:
    """The classical halves of ``transition``'s transfer on the fold's top-20 DE genes."""
    f = Fold(name)
    model = f.model
    query = _QueryContexts(model, f.query, np.full(len(f.query), name))
    controls = {c: control_profile(f.controls[c]) for c in f.sources}
    controls[name] = control_profile(f.query)
    transfer = model._transfer(
        extra=query.latents(), controls=controls, targets=query.cell_latents()
    )
    parts = transfer.context_parts((name, *TREATMENT), f.latent)
    assert parts is not None and parts[1] is not None
    states, fold = parts[0], parts[1]
    share = model.fold_share_
    blend = states + share * (fold - states)
    genes = np.asarray(get_suite(SUITE).task.fold_data(name).genes)
    top = f.top
    table = pd.DataFrame(
        {"true": f.true, "states": states, "fold": fold, "share": share, "blend": blend},
        index=genes,
    ).iloc[top]
    lines = [f"\n### {name}: the classical transfer on the truth's top-20 DE genes\n"]
    lines.append(table.round(2).to_markdown())
    for col in ("states", "fold", "blend"):
        lines.append(
            f"\n{col}: top-20 r {pearson(table[col].to_numpy(), table['true'].to_numpy()):.3f}"
        )
    return "\n".join(lines)


def fold_row(name: str) -> tuple[dict[str, float | str], dict[str, float]]:
    f = Fold(name)
    src = f.sources
    delta = np.vstack([f.delta[c] for c in src])
    lvl = np.vstack([f.controls[c].mean(0) for c in src])
    top = f.top
    # Ridge of ``level`` by leave-one-context-out squared error on the training types only.
    errors = dict.fromkeys(RIDGES, 0.0)
    for i, c in enumerate(src):
        rest = [j for j in range(len(src)) if j != i]
        w = f.weights(f.transfer.context_latent[c], [src[j] for j in rest])
        for r in RIDGES:
            est = level(w, delta[rest], lvl[rest], lvl[i], r)
            errors[r] += float(np.mean((est - delta[i]) ** 2))
    ridge = min(RIDGES, key=lambda r: errors[r])
    w = f.weights(f.latent, src)
    kernel = w @ delta
    lev = level(w, delta, lvl, f.query.mean(0), ridge)
    best, best_w = oracle(delta[:, top], f.true[top])
    states = states_effect(f)
    return {
        "kernel": pearson(kernel[top], f.true[top]),
        "level": pearson(lev[top], f.true[top]),
        "level ridge": ridge,
        "states": pearson(states[top], f.true[top]),
        "oracle convex": best,
        "oracle weights": ", ".join(
            f"{c} {x:.2f}" for c, x in zip(src, best_w, strict=True) if x >= 0.01
        ),
    }, loco_row(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", nargs="*", default=None, help="default: all cell types")
    parser.add_argument("--results", default=None, help="merged benchmark folder (results.csv)")
    parser.add_argument("--genes", default=None, help="print the transfer's top-20 genes of a fold")
    args = parser.parse_args()
    folds = args.folds or get_suite(SUITE).folds()
    rows, loco = {}, {}
    for fold in folds:
        print(f"{fold} ...", file=sys.stderr, flush=True)
        rows[fold], loco[fold] = fold_row(fold)
    table = pd.DataFrame(rows).T
    if args.results:
        res = pd.read_csv(Path(args.results) / "results.csv")
        res = res[res.metric == "pearson_delta_top20_de"]
        for model in ("transition", "state"):
            table[model] = res[res.model == model].set_index("fold")["value"].reindex(table.index)
    numeric = table.drop(columns=["oracle weights"]).astype(float)
    numeric.loc["mean"] = numeric.mean()
    numeric.loc["mean", "level ridge"] = np.nan
    print(
        "\n### Top-20 DE PearsonΔ of transfers between cell types (oracle: weights fitted on the truth)\n"
    )
    print(numeric.round(3).to_markdown())
    print("\n" + table[["oracle weights"]].to_markdown())
    within = pd.DataFrame(loco).T
    within.loc["mean"] = within.mean()
    print("\n### Leave-one-context-out on the training types (the held-out type takes no part)\n")
    print(within.round(3).to_markdown())
    if args.genes:
        print(gene_table(args.genes))


if __name__ == "__main__":
    main()
