"""Variants of ``transition``'s ``features`` estimate on Papalexi's held-out knockouts (dev).

Pseudobulk level only, no network: for each fold of ``papalexi2021-heldout-ko`` the effect of
each held-out knockout is estimated from the training knockouts' effects and the suite's
GO+STRING embedding, several ways, and scored with the VCC parts that need no cells: ``pds``
(L1, own target masked) and ``mae``, and the baseline-scaled mean of the two against the mean
of the training effects (``vcc2``; DES left out). Variants: ``mean``; ``ridge`` (transition's
classical ``features`` estimate); ``nearest`` (the ``nearest_perturbation`` baseline, cosine);
``knn<k>`` (cosine-softmax over the k nearest); ``blend<a>`` (ridge + a (nearest - ridge)).

    nice -n 10 .venv/bin/python benchmarks/papalexi_features_dev.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from celltwin._keys import CONTROL, PERTURBATION
from celltwin.benchmark import get_suite
from celltwin.eval import baseline_scaled
from celltwin.eval._metrics import pds

SUITE = "papalexi2021-heldout-ko"


def dense(x: object) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)  # type: ignore[union-attr]


def deltas(adata, names: list[str]) -> np.ndarray:
    x = dense(adata.X)
    pert = adata.obs[PERTURBATION].astype(str).to_numpy()
    control = x[pert == CONTROL].mean(axis=0)
    return np.vstack([x[pert == n].mean(axis=0) - control for n in names])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def variants(f_train, d_train, f_test, ridge: float = 1.0) -> dict[str, np.ndarray]:
    center = d_train.mean(axis=0)
    coef = np.linalg.solve(
        f_train.T @ f_train + ridge * np.eye(f_train.shape[1]), f_train.T @ (d_train - center)
    )
    out = {"mean": np.tile(center, (len(f_test), 1)), "ridge": center + f_test @ coef}
    sim = cosine(f_test, f_train)
    out["nearest"] = d_train[np.argmax(sim, axis=1)]
    for k in (2, 3, 5):
        idx = np.argsort(-sim, axis=1)[:, :k]
        w = np.take_along_axis(sim, idx, axis=1)
        w = np.exp(w / 0.1)
        w /= w.sum(axis=1, keepdims=True)
        out[f"knn{k}"] = np.einsum("ik,ikg->ig", w, d_train[idx])
    for a in (0.25, 0.5, 0.75):
        out[f"blend{a}"] = out["ridge"] + a * (out["nearest"] - out["ridge"])
    nearest = np.argmax(sim, axis=1)
    fitted = center + f_train @ coef
    out["nearest_corrected"] = d_train[nearest] + out["ridge"] - fitted[nearest]
    # Nearest in the space of the ridge's predictions (a metric learned from the effects).
    pred_dist = ((out["ridge"][:, None, :] - fitted[None, :, :]) ** 2).sum(axis=2)
    out["nearest_learned"] = d_train[np.argmin(pred_dist, axis=1)]
    for t in (0.02, 0.05):
        w = np.exp((sim - sim.max(axis=1, keepdims=True)) / t)
        w /= w.sum(axis=1, keepdims=True)
        out[f"soft{t}"] = w @ d_train
    for s in (2.0, 3.0):
        out[f"ridge_x{s}"] = center + s * (out["ridge"] - center)
    return out


def main() -> None:
    task = get_suite(SUITE).task
    rows = []
    for fold in task.folds():
        data = task.fold_data(fold)
        emb = task.model_fit_kwargs("transition", data, {})["perturbation_features"]
        train_names = sorted(set(data.train.obs[PERTURBATION].astype(str)) - {CONTROL})
        test_names = [p for p in data.conditions[PERTURBATION] if p in emb.index]
        train_names = [p for p in train_names if p in emb.index]
        d_train = deltas(data.train, train_names)
        d_true = deltas(data.truth, test_names)
        genes = list(map(str, data.train.var_names))
        mask = np.array([[g == p for g in genes] for p in test_names])
        preds = variants(
            emb.loc[train_names].to_numpy(float), d_train, emb.loc[test_names].to_numpy(float)
        )
        base_pds = pds(preds["mean"], d_true, target_mask=mask).mean()
        base_mae = np.abs(preds["mean"] - d_true).mean()
        for name, pred in preds.items():
            p = pds(pred, d_true, target_mask=mask).mean()
            m = np.abs(pred - d_true).mean()
            vcc2 = (baseline_scaled(m, base_mae, best=0) + baseline_scaled(p, base_pds, best=1)) / 2
            rows.append({"fold": fold, "variant": name, "pds": p, "mae": m, "vcc2": vcc2})
    table = pd.DataFrame(rows)
    print(
        table.pivot(index="variant", columns="fold", values="vcc2")
        .assign(mean=lambda t: t.mean(axis=1))
        .round(3)
        .to_markdown()
    )
    print()
    print(table.groupby("variant")[["pds", "mae", "vcc2"]].mean().round(4).to_markdown())


if __name__ == "__main__" and "--difficulty" not in __import__("sys").argv:
    main()


def difficulty() -> None:
    """Does the held-out error of a knockout's nearest training knockouts (their ridge error
    when left out) predict its own ridge error? And does the plain feature distance?"""
    from scipy import stats

    task = get_suite(SUITE).task
    rows = []
    for fold in task.folds():
        data = task.fold_data(fold)
        emb = task.model_fit_kwargs("transition", data, {})["perturbation_features"]
        train_names = [
            p
            for p in sorted(set(data.train.obs[PERTURBATION].astype(str)) - {CONTROL})
            if p in emb.index
        ]
        test_names = [p for p in data.conditions[PERTURBATION] if p in emb.index]
        d_train, d_true = deltas(data.train, train_names), deltas(data.truth, test_names)
        f_train, f_test = emb.loc[train_names].to_numpy(float), emb.loc[test_names].to_numpy(float)
        loo = np.zeros(len(train_names))
        for i in range(len(train_names)):
            keep = np.arange(len(train_names)) != i
            pred = variants(f_train[keep], d_train[keep], f_train[i : i + 1])["ridge"][0]
            loo[i] = np.sqrt(np.mean((pred - d_train[i]) ** 2))
        ridge = variants(f_train, d_train, f_test)["ridge"]
        dist = np.sqrt(((f_test[:, None, :] - f_train[None, :, :]) ** 2).sum(axis=2))
        near = np.argsort(dist, axis=1)[:, :3]
        for j, name in enumerate(test_names):
            rows.append(
                {
                    "fold": fold,
                    "perturbation": name,
                    "rmse": float(np.sqrt(np.mean((ridge[j] - d_true[j]) ** 2))),
                    "knn_distance": float(dist[j, near[j]].mean()),
                    "neighbour_error": float(loo[near[j]].mean()),
                    "train_effect_near": float(np.sqrt((d_train[near[j]] ** 2).mean())),
                }
            )
    table = pd.DataFrame(rows)
    for column in ("knn_distance", "neighbour_error", "train_effect_near"):
        print(column, round(float(stats.spearmanr(table[column], table["rmse"]).statistic), 3))


if __name__ == "__main__" and "--difficulty" in __import__("sys").argv:
    difficulty()
