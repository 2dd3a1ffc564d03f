"""Gene and perturbation embeddings shared by the linear and nearest-perturbation baselines."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._keys import split_combination


def gene_embedding(profiles: np.ndarray, n_components: int) -> np.ndarray:
    """Top principal components of the genes, from pseudobulk profiles (profiles x genes).

    As ``prcomp(genes x profiles)`` in Ahlmann-Eltze et al.: genes are the observations, each
    profile is centred across genes, and the genes' scores ``U S`` on the first
    ``n_components`` components are returned (genes x K, K capped by the matrix rank).
    """
    m = profiles.T - profiles.mean(axis=1)[None, :]
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    k = min(n_components, s.size)
    return u[:, :k] * s[:k]


def row_scores(rows: np.ndarray, n_components: int) -> np.ndarray:
    """Principal-component scores of the rows (rows x K): columns centred, ``U S``."""
    m = rows - rows.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    k = min(n_components, s.size)
    return u[:, :k] * s[:k]


def embed_label(
    perturbation: str, rows: Mapping[str, int], matrix: np.ndarray
) -> tuple[np.ndarray | None, list[str]]:
    """Embedding of a perturbation label from a named table, and the components it lacks.

    A label present in ``rows`` uses its own row; otherwise a combination is the sum of its
    components' rows (the linear-model assumption). Returns ``(None, missing)`` when some
    component has no row.
    """
    if perturbation in rows:
        return matrix[rows[perturbation]], []
    components = split_combination(perturbation)
    missing = [c for c in components if c not in rows]
    if missing or not components:
        return None, missing or [perturbation]
    return matrix[[rows[c] for c in components]].sum(axis=0), []


def validated_embedding(embedding: pd.DataFrame, *, owner: str) -> tuple[list[str], np.ndarray]:
    """Check a user perturbation embedding (rows = perturbation names) and return its parts."""
    key = f"{owner}.fit: 'perturbation_features'"
    if not isinstance(embedding, pd.DataFrame):
        raise TypeError(
            f"{key} must be a pandas DataFrame indexed by perturbation name "
            f"(got {type(embedding).__name__})."
        )
    if embedding.shape[0] == 0 or embedding.shape[1] == 0:
        raise ValueError(
            f"{key} is empty (shape {embedding.shape}). Fix: one row per perturbation."
        )
    index = [str(i) for i in embedding.index]
    if len(set(index)) != len(index):
        dup = embedding.index[embedding.index.duplicated()][:3].tolist()
        raise ValueError(f"{key} has duplicated perturbation names {dup}. Fix: one row each.")
    try:
        values = embedding.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must hold numbers only. Fix: drop non-numeric columns.") from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{key} holds NaN or infinite values. Fix: fill or drop those rows.")
    return index, values
