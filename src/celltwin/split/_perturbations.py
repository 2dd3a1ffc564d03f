"""Held-out perturbations: predict the response to perturbations never seen in training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT
from ._core import (
    Unit,
    as_name_list,
    assign,
    base_params,
    check_fraction,
    check_names,
    count_for,
    draw,
    not_enough,
    obs_strings,
    require_columns,
    require_writable,
    store,
)
from ._leakage import check_leakage


def _hold_out(
    items: list[str],
    *,
    test_fraction: float,
    val_fraction: float,
    test: list[str] | None,
    val: list[str] | None,
    rng: np.random.Generator,
    where: str,
) -> tuple[list[str], list[str]]:
    """Choose test and val items among ``items`` (fractions of ``len(items)`` or explicit lists)."""
    n = len(items)
    if test is None:
        test = draw(set(items) - set(val or []), count_for(test_fraction, n), rng)
    if val is None:
        n_val = count_for(val_fraction, n)
        val = draw(sorted(set(items) - set(test)), n_val, rng)
    if len(test) + len(val) >= n:
        raise not_enough(
            f"perturbations{where}",
            n,
            len(test),
            len(val),
            "lower test_fraction / val_fraction, shorten the test / val lists or add perturbations",
        )
    return test, val


def split_perturbations(
    adata: AnnData,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    test: Sequence[str] | None = None,
    val: Sequence[str] | None = None,
    per_context: bool = False,
    seed: int = 0,
    key_added: str = SPLIT,
) -> None:
    """Hold out whole perturbations: their cells go to test (or val) in every context.

    A held-out perturbation has no training cell anywhere, so the split asks for the response to
    an unseen perturbation. Combination labels (``A+B``) are units like any other here; use
    :func:`split_combinations` to reason about their components.

    Control cells stay in ``train`` (see :mod:`celltwin.split`). Writes ``obs[key_added]`` and
    ``uns['celltwin']['splits'][key_added]`` in place.

    Parameters
    ----------
    adata
        Canonical AnnData with ``obs['perturbation']`` (and ``obs['context']`` when
        ``per_context``).
    test_fraction, val_fraction
        Fractions of the (non-control) perturbations held out for test and val, rounded half up
        and at least one when positive. Ignored for a set given as a list. There is no
        validation set unless asked for: ``val_fraction`` defaults to 0 (it was 0.1 before;
        pass ``val_fraction=0.1`` for the old split).
    test, val
        Explicit perturbations to hold out (held out in every context); override the fractions.
    per_context
        When ``True``, choose the held-out perturbations independently in each context: the unit
        becomes the (context, perturbation) pair and a perturbation held out in one context may
        be trained on in another. Cannot be combined with explicit lists.
    seed
        Seed of ``numpy.random.default_rng``; the choice depends only on the seed and the sorted
        perturbation names, never on the order of the cells.
    key_added
        obs column (and uns entry) the split is written to.

    Examples
    --------
    >>> split_perturbations(adata, test_fraction=0.2, val_fraction=0.1, seed=0)  # doctest: +SKIP
    >>> adata.obs["split"].value_counts()  # doctest: +SKIP
    """
    require_writable(adata, key_added)
    require_columns(adata, [PERTURBATION, *([CONTEXT] if per_context else [])])
    test_fraction = check_fraction("test_fraction", test_fraction)
    val_fraction = check_fraction("val_fraction", val_fraction)
    if test_fraction + val_fraction >= 1:
        raise ValueError(
            f"test_fraction + val_fraction must be < 1 (got {test_fraction} + {val_fraction}): "
            "leave some perturbations for training"
        )
    if per_context and (test is not None or val is not None):
        raise ValueError(
            "test / val lists hold perturbations out in every context, while per_context=True "
            "draws them per context: pass the lists with per_context=False, or fractions only"
        )
    perturbations = obs_strings(adata, PERTURBATION)
    available = sorted(set(perturbations.tolist()) - {CONTROL})
    test_list, val_list = _explicit_lists(test, val, available)

    rng = np.random.default_rng(seed)
    if per_context:
        unit = [CONTEXT, PERTURBATION]
        test_units, val_units = _per_context(
            obs_strings(adata, CONTEXT), perturbations, test_fraction, val_fraction, rng
        )
    else:
        unit = [PERTURBATION]
        test_p, val_p = _hold_out(
            available,
            test_fraction=test_fraction,
            val_fraction=val_fraction,
            test=test_list,
            val=val_list,
            rng=rng,
            where="",
        )
        test_units = [(p,) for p in test_p]
        val_units = [(p,) for p in val_p]

    labels = assign(adata, unit, test_units, val_units)
    params = base_params("perturbations", seed=seed, unit=unit, test=test_units, val=val_units)
    params.update(
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        explicit_test=test_list is not None,
        explicit_val=val_list is not None,
        per_context=bool(per_context),
    )
    store(adata, labels, key_added=key_added, params=params)
    check_leakage(adata, key=key_added)


def _explicit_lists(
    test: Sequence[str] | None, val: Sequence[str] | None, available: list[str]
) -> tuple[list[str] | None, list[str] | None]:
    """The test and val lists checked (known, disjoint); ``None`` where none was given."""
    test_list = (
        None
        if test is None
        else check_names("test", as_name_list(test), available, "perturbations")
    )
    val_list = (
        None if val is None else check_names("val", as_name_list(val), available, "perturbations")
    )
    if test_list is not None and val_list is not None and set(test_list) & set(val_list):
        raise ValueError(
            f"perturbations {sorted(set(test_list) & set(val_list))} are in both 'test' and "
            "'val': a perturbation is held out for one of them only"
        )
    return test_list, val_list


def _per_context(
    contexts: np.ndarray,
    perturbations: np.ndarray,
    test_fraction: float,
    val_fraction: float,
    rng: np.random.Generator,
) -> tuple[list[Unit], list[Unit]]:
    """(context, perturbation) pairs held out for test and val, drawn in each context in turn."""
    test_units: list[Unit] = []
    val_units: list[Unit] = []
    for context in sorted(set(contexts.tolist())):
        items = sorted(set(perturbations[contexts == context].tolist()) - {CONTROL})
        test_c, val_c = _hold_out(
            items,
            test_fraction=test_fraction,
            val_fraction=val_fraction,
            test=None,
            val=None,
            rng=rng,
            where=f" in context {context!r}",
        )
        test_units += [(context, p) for p in test_c]
        val_units += [(context, p) for p in val_c]
    return test_units, val_units
