"""What a classical estimate of ``transition`` borrowed from (issue 19, point 4).

The sources follow :meth:`Transfer.estimate`'s order, so each condition is explained by the
estimate the model used for it:

``measured``
    The condition itself (weight 1).
``cell states`` / ``kernel``
    The treatment in other contexts, each weighted by its share of the target cells' nearest
    training control cells (cell states) or by the context kernel; the weights sum to 1 and
    are those of both halves of the transfer (log-space and fold change).
``dose``
    The treatment at its other doses in the same context, weights summing to 1.
``part: <kind>``
    A combination is the sum of its parts' estimates (plus an interaction term): each part's
    own sources, their weights divided by the number of parts (so they sum to 1).
``features``
    A perturbation never measured, estimated by a ridge regression from prior features: the
    training perturbations whose features are nearest (cosine similarity, in [-1, 1], not a
    mixture weight), with the contexts that measured them.
"""

from __future__ import annotations

import numpy as np

from ..._keys import split_combination
from .._conditions import ConditionKey, dose_components
from .._sources import Source
from ._features import Transfer


def estimate_sources(transfer: Transfer, key: ConditionKey, latent: np.ndarray) -> list[Source]:
    """The sources of ``key``'s classical estimate (see the module docstring); empty when the
    model cannot estimate it."""
    found = _measured_or_context(transfer, key, latent)
    if found:
        return found
    doses = transfer.dose_rows(key)
    if doses is not None:
        return _rows(transfer, "dose", *doses)
    parts = _parts(transfer, key, latent)
    if parts:
        return parts
    return _nearest_features(transfer, key)


def _rows(transfer: Transfer, kind: str, rows: list[int], weights: np.ndarray) -> list[Source]:
    return [Source(kind, *transfer.keys[i], float(w)) for i, w in zip(rows, weights, strict=True)]


def _measured_or_context(transfer: Transfer, key: ConditionKey, latent: np.ndarray) -> list[Source]:
    if transfer.own(key) is not None:
        return [Source("measured", *key, 1.0)]
    found = transfer.context_weights(key, latent)
    if found is None:
        return []
    rows, weights, kind, _ = found
    return _rows(transfer, kind, rows, weights)


def _parts(transfer: Transfer, key: ConditionKey, latent: np.ndarray) -> list[Source]:
    """Each part's sources (as :meth:`Transfer.single` estimates it), weights / parts."""
    if transfer.combination(key, latent) is None:
        return []
    c, p, d = key
    parts = list(zip(split_combination(p), dose_components(p, d), strict=True))
    out = []
    for part, dose in parts:
        found = _measured_or_context(transfer, (c, part, dose), latent)
        found = found or _nearest_features(transfer, (c, part, dose))
        out += [s._replace(kind=f"part: {s.kind}", weight=s.weight / len(parts)) for s in found]
    return out


def _nearest_features(transfer: Transfer, key: ConditionKey) -> list[Source]:
    """Training single perturbations by cosine similarity of their features to ``key``'s."""
    features = transfer.features
    if features is None or transfer.from_features(key) is None:
        return []
    target = features.vector(key[1], key[2])
    assert target is not None  # from_features found one
    contexts: dict[tuple[str, str], list[str]] = {}
    for c, p, d in transfer.keys:
        if len(split_combination(p)) == 1 and features.vector(p, d) is not None:
            contexts.setdefault((p, d), []).append(c)
    out = []
    for (p, d), where in contexts.items():
        v = features.vector(p, d)
        assert v is not None
        norm = float(np.linalg.norm(v) * np.linalg.norm(target))
        similarity = float(v @ target) / norm if norm > 0 else 0.0
        out.append(Source("features", ", ".join(sorted(set(where))), p, d, similarity))
    return out
