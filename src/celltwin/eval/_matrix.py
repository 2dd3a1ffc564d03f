"""Row and column selection on dense or sparse matrices, without copies where none is needed."""

from __future__ import annotations

from typing import Any, TypeGuard

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

__all__ = ["as_matrix", "columns", "is_sparse", "rows", "vstack"]


def is_sparse(X: object) -> TypeGuard[sp.spmatrix]:
    """``scipy.sparse.issparse``, telling the type checker what a true answer means."""
    return bool(sp.issparse(X))


def as_matrix(X: ArrayLike | sp.spmatrix) -> NDArray[Any] | sp.spmatrix:
    """A sparse matrix as it is, anything else as a numpy array (an array itself, not a copy)."""
    return X if is_sparse(X) else np.asarray(X)


def columns(X: Any, cols: NDArray[np.intp]) -> Any:
    """Columns ``cols`` of X; X itself when they are all columns in order (no copy)."""
    if cols.size == X.shape[1] and np.array_equal(cols, np.arange(X.shape[1])):
        return X
    return X[:, cols] if sp.issparse(X) else np.asarray(X)[:, cols]


def rows(X: Any, idx: NDArray[np.intp]) -> Any:
    """Rows of X; X itself when ``rows`` is every row in order (no copy of a large matrix)."""
    if idx.size == X.shape[0] and np.array_equal(idx, np.arange(X.shape[0])):
        return X
    return X[idx] if sp.issparse(X) else np.asarray(X)[idx]


def vstack(a: Any, b: Any) -> Any:
    """Rows of ``a`` then ``b``: CSR when both are sparse, else dense."""
    if sp.issparse(a) and sp.issparse(b):
        return sp.vstack([a, b], format="csr")
    dense = [x.toarray() if sp.issparse(x) else np.asarray(x) for x in (a, b)]
    return np.vstack(dense)
