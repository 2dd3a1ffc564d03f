"""Small simulated perturbation data shared by the eval tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from celltwin._keys import CONTROL, TARGET_SUM


@dataclass(frozen=True)
class Sim:
    """Truth and predictions as (cells x genes) log1p arrays with per-cell labels."""

    genes: np.ndarray
    true_X: np.ndarray
    true_labels: np.ndarray
    good_X: np.ndarray  # independent cells drawn from the true effects
    pred_labels: np.ndarray
    shuffled_X: np.ndarray  # cells drawn from another perturbation's effects
    train_X: np.ndarray
    train_labels: np.ndarray


def _cells(rng, base, lfc, n):
    size = rng.lognormal(0.0, 0.3, size=(n, 1))
    mean = base[None, :] * np.exp(lfc)[None, :] * size
    counts = rng.poisson(rng.gamma(4.0, mean / 4.0))
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return np.log1p(counts / totals * TARGET_SUM).astype(np.float32)


def simulate(
    seed: int = 0, n_perts: int = 8, n_genes: int = 120, cells: int = 40, n_control: int = 120
) -> Sim:
    rng = np.random.default_rng(seed)
    genes = np.array([f"G{j:03d}" for j in range(n_genes)])
    base = rng.lognormal(0.0, 1.0, size=n_genes).clip(0.05, 30)
    targets = rng.choice(genes[base > 1.0], 2 * n_perts, replace=False)
    lfcs = {}
    for t in targets:
        lfc = np.where(rng.random(n_genes) < 0.2, rng.normal(0, 1.2, n_genes), 0.0)
        lfc[genes == t] = -2.5
        lfcs[t] = lfc
    test, train = targets[:n_perts], targets[n_perts:]
    zero = np.zeros(n_genes)

    def block(pairs):
        xs = [_cells(rng, base, lfc, n_control if lab == CONTROL else cells) for lab, lfc in pairs]
        labs = [np.full(len(x), lab) for x, (lab, _) in zip(xs, pairs, strict=True)]
        return np.vstack(xs), np.concatenate(labs)

    true_X, true_labels = block([(t, lfcs[t]) for t in test] + [(CONTROL, zero)])
    good, pred_labels = block([(t, lfcs[t]) for t in test] + [(CONTROL, zero)])
    shifted = np.roll(test, 1)
    shuffled, _ = block(
        [(t, lfcs[s]) for t, s in zip(test, shifted, strict=True)] + [(CONTROL, zero)]
    )
    train_X, train_labels = block([(t, lfcs[t]) for t in train] + [(CONTROL, zero)])
    return Sim(genes, true_X, true_labels, good, pred_labels, shuffled, train_X, train_labels)


@pytest.fixture(scope="session")
def sim() -> Sim:
    return simulate()
