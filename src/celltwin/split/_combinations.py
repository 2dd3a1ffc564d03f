"""Combinations by how many of their components were seen in training (GEARS ``combo_seen0/1/2``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from .._keys import CONTROL, PERTURBATION, SPLIT
from ._core import (
    as_name_list,
    assign,
    base_params,
    category,
    check_fraction,
    check_names,
    components,
    count_for,
    draw,
    not_enough,
    obs_strings,
    require_columns,
    require_writable,
    store,
    trained_singles,
)
from ._leakage import check_leakage

#: Random draws of held-out singles tried before giving up on populating every category.
_MAX_DRAWS = 200


def _categories_of(
    combos: list[str], singles: set[str], held_singles: set[str]
) -> dict[str, list[str]]:
    """Combinations that may go to test, grouped by category, when ``held_singles`` are held out.

    These are the combinations touching a held-out single and those whose components are all
    trained singles (the pool of ``combo_seen2`` for pairs).
    """
    trained = singles - held_singles
    grouped: dict[str, list[str]] = {}
    for combo in combos:
        parts = set(components(combo))
        if parts & held_singles or parts <= trained:
            grouped.setdefault(category(combo, trained), []).append(combo)
    return grouped


def _choose_singles(
    combos: list[str],
    singles: list[str],
    n_held: int,
    required: list[str],
    rng: np.random.Generator,
) -> list[str]:
    """Draw ``n_held`` singles so that every required category has at least one combination.

    Each draw starts from a random combination whose components all have single perturbations
    (holding both out makes it ``combo_seen0``) and fills up with random singles.
    """
    single_set = set(singles)
    seeds = [c for c in combos if set(components(c)) <= single_set]
    for _ in range(_MAX_DRAWS):
        start: list[str] = []
        if seeds and n_held >= 2:
            start = components(seeds[int(rng.integers(len(seeds)))])[:n_held]
        held = sorted(
            set(start) | set(draw(single_set - set(start), n_held - len(set(start)), rng))
        )
        found = _categories_of(combos, single_set, set(held))
        if all(found.get(c) for c in required):
            return held
    raise ValueError(
        f"could not hold out {n_held} of {len(singles)} singles so that categories {required} "
        f"all have combinations ({_MAX_DRAWS} draws): raise test_single_fraction, pass "
        "test_singles explicitly, or set test_seen2_fraction=0 when no combination has both "
        "singles"
    )


def split_combinations(
    adata: AnnData,
    *,
    test_single_fraction: float = 0.2,
    test_singles: Sequence[str] | None = None,
    test_seen2_fraction: float = 0.2,
    val_fraction: float = 0.0,
    seed: int = 0,
    key_added: str = SPLIT,
) -> None:
    """Hold out singles and combinations, graded by how many components training has seen.

    The GEARS setting. Some single perturbations are held out (``unseen_single``); every
    combination containing one of them is held out too, so nothing about a held-out single leaks
    through a combination. A combination is ``combo_seen{k}`` when ``k`` of its components have
    single perturbations in training: ``combo_seen0`` (both singles held out), ``combo_seen1``
    (one), ``combo_seen2`` (both seen; a fraction ``test_seen2_fraction`` of the remaining fully
    seen combinations). Held-out singles are drawn until each of these categories is populated.
    Validation takes ``val_fraction`` of the combinations left in training (their singles stay in
    training, so the test categories do not change).

    Categories are stored in ``uns['celltwin']['splits'][key_added]['categories']`` and, per
    held-out cell, in ``obs[key_added + '_category']``. Control cells stay ``train``.

    Parameters
    ----------
    adata
        Canonical AnnData with ``obs['perturbation']`` holding singles and ``+``-joined
        combinations.
    test_single_fraction
        Fraction of the singles held out (rounded half up, at least one).
    test_singles
        Explicit singles to hold out instead (no category is then required to be populated).
    test_seen2_fraction
        Fraction of the combinations whose components are all seen that go to test.
    val_fraction
        Fraction of the combinations remaining in training that go to val (default 0: no
        validation set unless asked for; 0.1 was the default before).
    seed
        Seed of ``numpy.random.default_rng``.
    key_added
        obs column (and uns entry) the split is written to.

    Examples
    --------
    >>> split_combinations(adata, test_single_fraction=0.3, seed=1)  # doctest: +SKIP
    >>> adata.obs["split_category"].value_counts()  # doctest: +SKIP
    """
    require_writable(adata, key_added)
    require_columns(adata, [PERTURBATION])
    test_single_fraction = check_fraction("test_single_fraction", test_single_fraction)
    test_seen2_fraction = check_fraction("test_seen2_fraction", test_seen2_fraction)
    val_fraction = check_fraction("val_fraction", val_fraction)
    singles, combos = _singles_and_combinations(obs_strings(adata, PERTURBATION))

    rng = np.random.default_rng(seed)
    held = _held_singles(
        singles, combos, test_singles, test_single_fraction, test_seen2_fraction, rng
    )
    test, val = _held_combinations(singles, combos, held, test_seen2_fraction, val_fraction, rng)
    unit = [PERTURBATION]
    labels = assign(adata, unit, [(p,) for p in test], [(p,) for p in val])
    seen = trained_singles(adata, labels)
    categories = {p: category(p, seen) for p in (*test, *val)}
    params = base_params(
        "combinations",
        seed=seed,
        unit=unit,
        test=[(p,) for p in test],
        val=[(p,) for p in val],
        test_components=held,
    )
    params.update(
        test_single_fraction=test_single_fraction,
        explicit_test_singles=test_singles is not None,
        test_seen2_fraction=test_seen2_fraction,
        val_fraction=val_fraction,
    )
    store(adata, labels, key_added=key_added, params=params, categories=categories)
    check_leakage(adata, key=key_added)


def _singles_and_combinations(perturbations: np.ndarray) -> tuple[list[str], list[str]]:
    """The sorted single and combined perturbations, or a ValueError when either is too few."""
    names = sorted(set(perturbations.tolist()) - {CONTROL})
    singles = [p for p in names if len(components(p)) == 1]
    combos = [p for p in names if len(components(p)) > 1]
    if not combos or len(singles) < 2:
        raise ValueError(
            f"not enough perturbations for a combination split: {len(singles)} singles and "
            f"{len(combos)} combinations in obs[{PERTURBATION!r}]; it needs at least 2 singles "
            "and 1 combination ('A+B')"
        )
    return singles, combos


def _held_singles(
    singles: list[str],
    combos: list[str],
    test_singles: Sequence[str] | None,
    test_single_fraction: float,
    test_seen2_fraction: float,
    rng: np.random.Generator,
) -> list[str]:
    """The singles held out: given, or drawn so that every test category is populated."""
    if test_singles is not None:
        held = check_names(
            "test_singles", as_name_list(test_singles), singles, "single perturbations"
        )
    else:
        n_held = count_for(test_single_fraction, len(singles))
        if n_held >= len(singles):
            raise not_enough("singles", len(singles), n_held, 0, "lower test_single_fraction")
        required = ["combo_seen0", "combo_seen1"] + (
            ["combo_seen2"] if test_seen2_fraction > 0 else []
        )
        held = _choose_singles(combos, singles, n_held, required, rng)
    if len(set(held)) >= len(singles):
        raise not_enough("singles", len(singles), len(set(held)), 0, "hold out fewer singles")
    return held


def _held_combinations(
    singles: list[str],
    combos: list[str],
    held: list[str],
    test_seen2_fraction: float,
    val_fraction: float,
    rng: np.random.Generator,
) -> tuple[list[str], list[str]]:
    """Test (held singles, the combinations touching them, some fully seen ones) and val."""
    held_set = set(held)
    touching = [c for c in combos if set(components(c)) & held_set]
    remaining = [c for c in combos if c not in set(touching)]
    trained = set(singles) - held_set
    fully_seen = [c for c in remaining if set(components(c)) <= trained]
    seen2_test = draw(fully_seen, count_for(test_seen2_fraction, len(fully_seen)), rng)
    left = sorted(set(remaining) - set(seen2_test))
    n_val = count_for(val_fraction, len(left))
    if val_fraction > 0 and not left:
        raise ValueError(
            "no combination is left in training to draw validation from: lower "
            "test_single_fraction or test_seen2_fraction, or set val_fraction=0 (and use "
            "carve_validation later)"
        )
    val = draw(left, n_val, rng)
    return sorted(held_set | set(touching) | set(seen2_test)), val
