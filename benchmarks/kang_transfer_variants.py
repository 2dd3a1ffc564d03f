"""Alternatives to ``transition``'s classical half on Kang 2018, scored on the held-out cell types.

For each fold of ``kang2018-heldout-celltype`` (a cell type's IFN-beta cells held out), the
classical estimate of the held-out type's mean effect is computed several ways from the training
cells, with the kernel weights ``transition`` itself uses (latent distances between the types'
control cells, bandwidth chosen by leave-one-context-out), and scored by Pearson r on the top-20
DE genes of the truth (Welch t, as ``transition_dev.py``) and on all genes:

``kernel``      what ``transition`` uses: kernel-weighted mean of the other types' log1p effects.
``linear``      the same weights on effects in linear (CP10k) space, added to each held-out cell.
``fold``        multiplicative: the weighted stimulated/control ratio of linear means, applied to
                each held-out cell (a gene absent at baseline stays absent).
``choice``      per gene, ``kernel`` or ``fold``, whichever had the lower leave-one-context-out
                error over the training types.
``soft``        per gene, both, weighted by their inverse leave-one-context-out errors.
``quantile``    per gene, each source type's control-to-stimulated quantile map, kernel weighted,
                applied to the held-out cells.
``tau_top20``   the bandwidth chosen by leave-one-context-out top-20 correlation, not MSE.

With ``--state-fold F`` it also fits State (``pip install 'celltwin[peers]'``) and ``transition``
on fold F and prints both models' predicted effects on the truth's top-20 DE genes.

    .venv/bin/python benchmarks/kang_transfer_variants.py [--state-fold B] > variants.md
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from scipy import stats

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin.benchmark import get_suite
from celltwin.models import get_model
from celltwin.models._transition._estimator import _QueryContexts
from celltwin.models._transition._features import TAU_GRID, Transfer, kernel_weights

SUITE = "kang2018-heldout-celltype"
TREATMENT = ("IFNB", "")
QUANTILES = np.linspace(0.0, 1.0, 101)


def dense(x: object) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)  # type: ignore[union-attr]


def top20(x: np.ndarray, pert: np.ndarray) -> np.ndarray:
    t = stats.ttest_ind(x[pert != CONTROL], x[pert == CONTROL], equal_var=False).statistic
    return np.argsort(-np.abs(np.nan_to_num(t)))[:20]


def quantile_map(cells: np.ndarray, qc: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Each value's (mid-rank) level among the control quantiles, read off the stimulated ones."""
    out = np.empty_like(cells)
    for g in range(cells.shape[1]):
        lo = np.searchsorted(qc[:, g], cells[:, g], side="left")
        hi = np.searchsorted(qc[:, g], cells[:, g], side="right")
        level = np.clip((lo + hi) / 2 - 0.5, 0, len(QUANTILES) - 1) / (len(QUANTILES) - 1)
        y = np.interp(level, QUANTILES, qs[:, g])
        above = cells[:, g] > qc[-1, g]  # beyond the control range: the top quantile's shift
        y[above] = cells[above, g] + qs[-1, g] - qc[-1, g]
        out[:, g] = y
    return out


class Fold:
    """One fold's training summaries and the kernel of a (one-member, untrained) transition."""

    def __init__(self, fold: str) -> None:
        data = get_suite(SUITE).task.fold_data(fold)
        self.name = fold
        model = get_model("transition", seed=0, progress=False, n_members=1, max_steps=1)
        model.fit(data.train)
        self.model = model
        truth = dense(data.truth.X)
        pert = data.truth.obs[PERTURBATION].astype(str).to_numpy()
        self.true = truth[pert != CONTROL].mean(0) - truth[pert == CONTROL].mean(0)
        self.top = top20(truth, pert)
        self.query = dense(data.query.X)
        query = _QueryContexts(model, self.query, np.full(len(self.query), fold))
        self.transfer = model._transfer(extra=query.latents())
        self.latent = query.latent(fold)
        train = dense(data.train.X)
        ctx = data.train.obs[CONTEXT].astype(str).to_numpy()
        pt = data.train.obs[PERTURBATION].astype(str).to_numpy()
        self.sources = sorted(set(ctx) - {fold})
        self.controls = {c: train[(ctx == c) & (pt == CONTROL)] for c in self.sources}
        stim = {c: train[(ctx == c) & (pt != CONTROL)] for c in self.sources}
        self.top_of = {c: top20(np.vstack([self.controls[c], stim[c]]),
                                np.r_[np.full(len(self.controls[c]), CONTROL),
                                      np.full(len(stim[c]), "IFNB")]) for c in self.sources}  # fmt: skip
        self.delta = {c: stim[c].mean(0) - self.controls[c].mean(0) for c in self.sources}
        self.lin_c = {c: np.expm1(self.controls[c]).mean(0) for c in self.sources}
        self.lin_s = {c: np.expm1(stim[c]).mean(0) for c in self.sources}
        self.q_c = {c: np.quantile(self.controls[c], QUANTILES, axis=0) for c in self.sources}
        self.q_s = {c: np.quantile(stim[c], QUANTILES, axis=0) for c in self.sources}

    def weights(
        self, latent: np.ndarray, sources: list[str], tau: float | None = None
    ) -> np.ndarray:
        t = self.transfer
        lat = np.vstack([t.context_latent[c] for c in sources])
        return kernel_weights(latent, lat, tau=t.tau if tau is None else tau, scale=t.scale)

    def estimates(
        self, cells: np.ndarray, latent: np.ndarray, sources: list[str]
    ) -> dict[str, np.ndarray]:
        w = self.weights(latent, sources)
        base = cells.mean(0)
        lin = w @ np.vstack([self.lin_s[c] - self.lin_c[c] for c in sources])
        num = w @ np.vstack([self.lin_s[c] for c in sources])
        den = w @ np.vstack([self.lin_c[c] for c in sources])
        ratio = num / np.maximum(den, 1e-6)
        return {
            "kernel": w @ np.vstack([self.delta[c] for c in sources]),
            "linear": np.log1p(np.maximum(np.expm1(cells) + lin, 0)).mean(0) - base,
            "fold": np.log1p(ratio * np.expm1(cells)).mean(0) - base,
        }

    def variants(self) -> dict[str, np.ndarray]:
        # Leave-one-context-out over the training types: per-gene errors of kernel and fold.
        err = {"kernel": 0.0, "fold": 0.0}
        for v in self.sources:
            others = [c for c in self.sources if c != v]
            est = self.estimates(self.controls[v], self.transfer.context_latent[v], others)
            for k in err:
                err[k] = err[k] + (est[k] - self.delta[v]) ** 2
        out = self.estimates(self.query, self.latent, self.sources)
        k, f = out["kernel"], out["fold"]
        out["choice"] = np.where(err["fold"] < err["kernel"], f, k)
        share_fold = err["kernel"] / np.maximum(err["kernel"] + err["fold"], 1e-12)
        out["soft"] = share_fold * f + (1 - share_fold) * k
        w = self.weights(self.latent, self.sources)
        base = self.query.mean(0)
        out["quantile"] = sum(
            wi * (quantile_map(self.query, self.q_c[c], self.q_s[c]).mean(0) - base)
            for wi, c in zip(w, self.sources, strict=True)
        )
        out["tau_top20"] = self.tau_by_top20()
        return out

    def tau_by_top20(self) -> np.ndarray:
        t = self.transfer
        best, best_r = np.inf, -np.inf
        for tau in TAU_GRID:
            tr = Transfer(t.keys, t.delta, t.context_latent, tau=tau, features=None, ridge=1.0)
            rs = []
            for i, key in enumerate(tr.keys):
                est = tr.context(key, tr.context_latent[key[0]])
                if est is not None:
                    top = self.top_of[key[0]]
                    rs.append(np.corrcoef(est[top], tr.delta[i][top])[0, 1])
            if np.mean(rs) > best_r + 1e-12:
                best, best_r = tau, float(np.mean(rs))
        tr = Transfer(t.keys, t.delta, t.context_latent, tau=best, features=None, ridge=1.0)
        return tr.context((self.name, *TREATMENT), self.latent)


def state_table(fold: str) -> str:
    data = get_suite(SUITE).task.fold_data(fold)
    truth = dense(data.truth.X)
    pert = data.truth.obs[PERTURBATION].astype(str).to_numpy()
    ctrl = truth[pert == CONTROL].mean(0)
    top = top20(truth, pert)
    rows = {"true": truth[pert != CONTROL].mean(0) - ctrl}
    peer = {"max_steps": 400, "n_threads": 1}  # as the benchmark runs State
    for name, params in (("state", peer), ("transition", {"seed": 0, "progress": False})):
        model = get_model(name, **params).fit(data.train)
        pred = model.predict(data.query, conditions=data.conditions)[:, data.genes]
        rows[name] = dense(pred.X).mean(0) - ctrl
    table = pd.DataFrame({k: v[top] for k, v in rows.items()}, index=np.asarray(data.genes)[top])
    lines = [
        f"\n### {fold}: predicted effects on the truth's top-20 DE genes\n",
        table.round(2).to_markdown(),
    ]
    for name in ("state", "transition"):
        r20 = np.corrcoef(rows[name][top], rows["true"][top])[0, 1]
        r_all = np.corrcoef(rows[name], rows["true"])[0, 1]
        lines.append(f"\n{name}: top-20 r {r20:.3f}, all genes r {r_all:.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", nargs="*", default=None, help="default: all cell types")
    parser.add_argument("--state-fold", default=None)
    args = parser.parse_args()
    folds = args.folds or get_suite(SUITE).folds()
    top_rows, all_rows = {}, {}
    for fold in folds:
        print(f"{fold} ...", file=sys.stderr, flush=True)
        f = Fold(fold)
        found = f.variants()
        top_rows[fold] = {k: np.corrcoef(v[f.top], f.true[f.top])[0, 1] for k, v in found.items()}
        all_rows[fold] = {k: np.corrcoef(v, f.true)[0, 1] for k, v in found.items()}
    for title, rows in (("top-20 DE genes", top_rows), ("all genes", all_rows)):
        table = pd.DataFrame(rows).T
        table.loc["mean"] = table.mean()
        print(f"\n### Pearson r of the classical estimate with the true effect, {title}\n")
        print(table.round(3).to_markdown())
    if args.state_fold:
        print(state_table(args.state_fold))


if __name__ == "__main__":
    main()
