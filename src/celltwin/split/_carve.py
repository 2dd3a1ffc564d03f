"""Validation carved from training only, and reading a stored split back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from anndata import AnnData

from .._keys import CONTEXT, PERTURBATION, SPLIT, TEST, TRAIN, VAL
from ._core import (
    Unit,
    assign,
    category,
    cell_units,
    columns_to_units,
    components,
    control_mask,
    count_for,
    draw,
    read_labels,
    read_params,
    store,
    trained_singles,
    units_to_columns,
)
from ._leakage import check_leakage

#: Joins the values of a multi-column unit into one sortable name (never appears in labels).
_SEP = "\x1f"

Groups = dict[str, list[Unit]]


def _training_units(adata: AnnData, labels: np.ndarray, unit: list[str]) -> list[Unit]:
    units, codes = cell_units(adata, unit)
    train = ~control_mask(adata) & (labels == TRAIN)
    return [units[i] for i in np.unique(codes[train])]


def _each_unit(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> Groups:
    """Every training unit on its own (few-shot pairs of held-out contexts excluded)."""
    few_shot = columns_to_units([CONTEXT, PERTURBATION], params.get("few_shot", {}))
    return {
        _SEP.join(u): [u]
        for u in _training_units(adata, labels, params["unit"])
        if u not in few_shot
    }


def _combinations_only(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> Groups:
    """Training combinations only: moving a single would change the test categories."""
    return {
        u[0]: [u]
        for u in _training_units(adata, labels, params["unit"])
        if len(components(u[0])) > 1
    }


def _by_drug(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> Groups:
    """One group per training drug: all training perturbations containing it move together."""
    groups: Groups = {}
    for u in _training_units(adata, labels, params["unit"]):
        for drug in components(u[0]):
            groups.setdefault(drug, []).append(u)
    return groups


#: What carve_validation may move to val, per strategy: named groups of units moved together.
_CANDIDATES: dict[str, Callable[[AnnData, np.ndarray, dict[str, Any]], Groups]] = {
    "perturbations": _each_unit,
    "contexts": _each_unit,
    "doses": _each_unit,
    "combinations": _combinations_only,
    "drugs": _by_drug,
}


def carve_validation(
    adata: AnnData, *, key: str = SPLIT, fraction: float = 0.1, seed: int = 0
) -> None:
    """Move a fraction of a split's training units to ``val``, never touching test.

    The units moved are those the split holds out (perturbations, (context, perturbation) pairs,
    (perturbation, dose) pairs), so validation mimics the test setting. Some strategies restrict
    what may move: combination splits move combinations only (moving a single would change the
    ``combo_seen`` category of test combinations); drug splits move whole drugs (every
    training perturbation containing the drug); context splits never move few-shot pairs.
    Control cells stay ``train``. The stored parameters gain the new val units and
    ``carved = {fraction, seed, n_units}``; a split can be carved once.

    Parameters
    ----------
    adata
        Data with a split made by a ``celltwin.split.split_*`` function.
    key
        The split's obs column.
    fraction
        Fraction of the candidate training units (or drugs) moved to val, in (0, 1); rounded half
        up, at least one, and at least one candidate stays in training.
    seed
        Seed of ``numpy.random.default_rng``.

    Examples
    --------
    >>> split_perturbations(adata, val_fraction=0)  # doctest: +SKIP
    >>> carve_validation(adata, fraction=0.1)  # doctest: +SKIP
    """
    if adata.is_view:
        raise ValueError("adata is a view: call adata = adata.copy() before carving a split")
    params = read_params(adata, key)
    check_leakage(adata, key=key)
    if "carved" in params:
        raise ValueError(
            f"split {key!r} already has carved validation ({params['carved']}): make the split "
            "again and carve once"
        )
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"'fraction' must be in (0, 1) (got {fraction!r}), e.g. 0.1")
    labels = read_labels(adata, key)
    strategy = params["strategy"]
    groups = _CANDIDATES[strategy](adata, labels, params)
    n = count_for(fraction, len(groups))
    if n >= len(groups):
        raise ValueError(
            f"not enough training units to carve validation from split {key!r} ({strategy}): "
            f"{len(groups)} candidates, fraction={fraction} takes {n} and leaves none for "
            "training; lower fraction or hold out less in the split"
        )
    chosen = draw(groups, n, np.random.default_rng(seed))
    unit = params["unit"]
    old_val = columns_to_units(unit, params[VAL])
    val = old_val | {u for name in chosen for u in groups[name]}
    test = columns_to_units(unit, params[TEST])
    new_labels = assign(adata, unit, test, val)

    params = dict(params)
    params[VAL] = units_to_columns(unit, val)
    if strategy == "drugs":
        held = params["held_out_components"]
        params["held_out_components"] = {TEST: held[TEST], VAL: sorted({*held[VAL], *chosen})}
    params["carved"] = {"fraction": fraction, "seed": int(seed), "n_units": len(val - old_val)}
    categories = None
    if "categories" in params:
        seen = trained_singles(adata, new_labels)
        categories = {u[0]: category(u[0], seen) for u in test | val}
    store(adata, new_labels, key_added=key, params=params, categories=categories)
    check_leakage(adata, key=key)


def split_info(adata: AnnData, *, key: str = SPLIT) -> dict[str, Any]:
    """The parameters of the split stored in ``obs[key]``, as plain Python values.

    Works the same on a split just made and on one read back from ``.h5ad`` (where lists come
    back as numpy arrays).

    Parameters
    ----------
    adata
        Data with a split made by a ``celltwin.split.split_*`` function.
    key
        The split's obs column.

    Returns
    -------
    dict
        ``strategy``, ``seed``, ``unit`` (obs columns of a held-out unit), ``test`` / ``val``
        (held-out units, one list per unit column), ``held_out_components``, the counts
        (``n_cells``, ``n_perturbations``, ``n_control_cells``, ``per_context``: see
        :func:`celltwin.io.split_counts`) and the strategy's options (e.g. ``test_contexts``, ``few_shot``, ``categories``).
    """
    return read_params(adata, key)
