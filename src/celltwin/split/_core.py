"""Shared core of the split strategies: validation, held-out units, writing and reading a split.

Every strategy works the same way. It names the *unit* of holding out (the obs columns whose values
identify one condition: ``("perturbation",)``, ``("context", "perturbation")`` or
``("perturbation", "dose")``), chooses which units go to ``val`` and ``test`` from their sorted names
with ``numpy.random.default_rng(seed)`` (so the choice depends on the seed only, never on row order),
labels every cell of a held-out unit, and stores the parameters next to the labels:

* ``obs[key_added]``: categorical ``train`` / ``val`` / ``test``;
* ``uns['celltwin']['splits'][key_added]``: a JSON-serialisable dict with the strategy, the seed,
  the unit columns, the held-out units (``test`` / ``val``, one list per unit column, read in
  parallel), the held-out components (``held_out_components``), the counts of cells and of
  perturbations per split and per context (:func:`celltwin.io.split_counts`) and the options.

Control cells (``obs['perturbation'] == 'control'``) are always ``train``: they are the inputs from
which predictions are made, in every context including held-out ones, so every strategy leaves them
available. Test cells are therefore always perturbed cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTROL, PERTURBATION, SPLIT, TEST, TRAIN, UNS_KEY, VAL, split_combination
from ..io import split_counts, split_params

#: The split labels, in the order of the categorical column.
LABELS: tuple[str, str, str] = (TRAIN, VAL, TEST)
#: ``uns['celltwin'][SPLITS_UNS][key]`` holds the parameters of the split stored in ``obs[key]``.
SPLITS_UNS = "splits"
#: Suffix of the obs column holding the category of each held-out cell (combination splits).
CATEGORY_SUFFIX = "_category"

Unit = tuple[str, ...]


# --- validation --------------------------------------------------------------------------------


def require_columns(adata: AnnData, columns: Sequence[str]) -> None:
    """Raise when obs lacks one of ``columns`` or has missing values in it."""
    for column in columns:
        if column not in adata.obs.columns:
            raise ValueError(
                f"obs has no {column!r} column (columns: {list(adata.obs.columns)}): make the "
                "file canonical first with `celltwin prepare` (Python: celltwin.io.read), or "
                f"rename the column holding it to {column!r} (see 'The data model' in the README)"
            )
        n_missing = int(adata.obs[column].isna().sum())
        if n_missing:
            raise ValueError(
                f"obs[{column!r}] has {n_missing} missing values: fill them (control cells carry "
                f"{CONTROL!r} in obs[{PERTURBATION!r}]) or drop those cells before splitting"
            )


def require_writable(adata: AnnData, key_added: str) -> None:
    """Raise when the split cannot be stored on ``adata`` under ``key_added``."""
    if adata.is_view:
        raise ValueError("adata is a view: call adata = adata.copy() before splitting it")
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise ValueError(
            f"key_added must be a non-empty obs column name without '/' (got {key_added!r}); "
            f"the default is {SPLIT!r}"
        )


def check_fraction(name: str, value: float) -> float:
    """Return ``value`` as a float, raising unless ``0 <= value < 1``."""
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"{name!r} must be in [0, 1) (got {value!r}): pass the fraction of items to hold out, "
            "e.g. 0.2"
        )
    return value


def check_names(name: str, given: Iterable[str], available: Sequence[str], what: str) -> list[str]:
    """Return ``given`` sorted, raising when one of them is not in ``available``."""
    given = sorted({str(g) for g in given})
    known = set(available)
    unknown = [g for g in given if g not in known]
    if unknown:
        shown = ", ".join(repr(a) for a in list(available)[:10])
        more = f" and {len(available) - 10} more" if len(available) > 10 else ""
        raise ValueError(
            f"{name!r} names unknown {what} {unknown}: choose from {shown}{more} "
            f"(the {what} present in the data)"
        )
    return given


def as_name_list(value: str | Sequence[str] | None) -> list[str]:
    """A single name or a sequence of names as a list (``None`` -> ``[]``)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# --- choosing ----------------------------------------------------------------------------------


def count_for(fraction: float, n: int) -> int:
    """Number of ``n`` items a fraction selects: rounded half up, at least one when ``fraction > 0``."""
    if fraction <= 0 or n == 0:
        return 0
    return max(1, int(np.floor(fraction * n + 0.5)))


def draw(items: Iterable[str], n: int, rng: np.random.Generator) -> list[str]:
    """Choose ``n`` of ``items`` at random; the result depends only on the set of items and ``rng``."""
    pool = sorted(set(items))
    order = rng.permutation(len(pool))
    return sorted(pool[i] for i in order[:n])


def not_enough(what: str, n_available: int, n_test: int, n_val: int, fix: str) -> ValueError:
    """The error raised when holding out would leave no training item."""
    return ValueError(
        f"not enough {what}: {n_available} available, holding out {n_test} for test and {n_val} "
        f"for val leaves none for training; {fix}"
    )


# --- cells, units and components ---------------------------------------------------------------


def obs_strings(adata: AnnData, column: str) -> np.ndarray:
    """The values of ``obs[column]`` as a numpy array of Python strings (missing -> ``"nan"``)."""
    values = adata.obs[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        # Convert the few categories, not the millions of cells.
        categories = np.asarray(values.cat.categories.astype(str), dtype=object)
        codes = values.cat.codes.to_numpy()
        out = (
            categories[np.maximum(codes, 0)]
            if len(categories)
            else np.full(len(codes), "nan", dtype=object)
        )
        out[codes < 0] = "nan"
        return out
    return values.astype(str).to_numpy(dtype=object)


def control_mask(adata: AnnData) -> np.ndarray:
    """Boolean mask of control cells."""
    return obs_strings(adata, PERTURBATION) == CONTROL


def cell_units(adata: AnnData, unit: Sequence[str]) -> tuple[list[Unit], np.ndarray]:
    """The sorted distinct units and, per cell, the index of its unit."""
    codes, names = [], []
    for column in unit:
        column_codes, uniques = pd.factorize(obs_strings(adata, column), sort=True)
        codes.append(column_codes)
        names.append(list(uniques))
    if len(unit) == 1:
        return [(n,) for n in names[0]], codes[0]
    # One mixed-radix integer per cell; the codes are sorted per column, so sorting these
    # integers sorts the units by name, column after column.
    combined = np.zeros(adata.n_obs, dtype=np.int64)
    for column_codes, column_names in zip(codes, names, strict=True):
        combined = combined * len(column_names) + column_codes
    keys, inverse = np.unique(combined, return_inverse=True)
    units = []
    for key in keys.tolist():
        parts = []
        for column_names in reversed(names):
            key, index = divmod(key, len(column_names))
            parts.append(column_names[index])
        units.append(tuple(reversed(parts)))
    return units, inverse.ravel()


def unit_mask(units: list[Unit], codes: np.ndarray, chosen: Iterable[Unit]) -> np.ndarray:
    """Boolean mask of the cells whose unit is in ``chosen``."""
    index = {u: i for i, u in enumerate(units)}
    wanted = [index[u] for u in chosen if u in index]
    return np.isin(codes, wanted)


def components(perturbation: str) -> list[str]:
    """Components of a canonical perturbation label (``[]`` for control)."""
    return split_combination(perturbation)


def category(perturbation: str, trained_singles: set[str]) -> str:
    """GEARS-style category of a held-out perturbation given the singles seen in training.

    A single is ``unseen_single``; a combination is ``combo_seen{k}`` with ``k`` the number of its
    components whose single perturbation has training cells.
    """
    parts = components(perturbation)
    if len(parts) == 1:
        return "unseen_single"
    return f"combo_seen{sum(p in trained_singles for p in parts)}"


def trained_singles(adata: AnnData, labels: np.ndarray) -> set[str]:
    """Single (one-component) perturbations that have training cells."""
    perturbations = obs_strings(adata, PERTURBATION)
    return {
        p
        for p in set(perturbations[labels == TRAIN].tolist())
        if p != CONTROL and len(components(p)) == 1
    }


# --- labels and parameters ---------------------------------------------------------------------


def assign(
    adata: AnnData, unit: Sequence[str], test: Iterable[Unit], val: Iterable[Unit]
) -> np.ndarray:
    """Per-cell labels: cells of ``test`` units -> test, of ``val`` units -> val, others -> train.

    Control cells stay ``train`` whatever their unit.
    """
    units, codes = cell_units(adata, unit)
    labels = np.full(adata.n_obs, TRAIN, dtype=object)
    labels[unit_mask(units, codes, val)] = VAL
    labels[unit_mask(units, codes, test)] = TEST
    labels[control_mask(adata)] = TRAIN
    return labels


def units_to_columns(unit: Sequence[str], chosen: Iterable[Unit]) -> dict[str, list[str]]:
    """Held-out units as parallel lists, one per unit column (HDF5- and JSON-friendly)."""
    chosen = sorted(set(chosen))
    return {column: [u[i] for u in chosen] for i, column in enumerate(unit)}


def columns_to_units(unit: Sequence[str], stored: dict[str, list[str]]) -> set[Unit]:
    """Inverse of :func:`units_to_columns`."""
    columns = [list(stored.get(column, [])) for column in unit]
    return set(zip(*columns, strict=True)) if columns else set()


def base_params(
    strategy: str,
    *,
    seed: int,
    unit: Sequence[str],
    test: Iterable[Unit],
    val: Iterable[Unit],
    test_components: Iterable[str] = (),
    val_components: Iterable[str] = (),
) -> dict[str, Any]:
    """The parameters every strategy stores."""
    return {
        "strategy": strategy,
        "seed": int(seed),
        "unit": list(unit),
        TEST: units_to_columns(unit, test),
        VAL: units_to_columns(unit, val),
        "held_out_components": {
            TEST: sorted(set(test_components)),
            VAL: sorted(set(val_components)),
        },
    }


def store(
    adata: AnnData,
    labels: np.ndarray,
    *,
    key_added: str,
    params: dict[str, Any],
    categories: dict[str, str] | None = None,
) -> None:
    """Write the labels to ``obs[key_added]`` and the parameters to uns.

    ``categories`` maps held-out perturbations to their category; when given, it is stored in
    ``params['categories']`` and in ``obs[key_added + '_category']`` (missing for other cells).
    Any category column left by an earlier split under the same key is removed.
    """
    adata.obs[key_added] = pd.Categorical(labels, categories=list(LABELS))
    category_column = key_added + CATEGORY_SUFFIX
    if category_column in adata.obs.columns:
        del adata.obs[category_column]
    params = dict(params)
    # Counts per split and per context (n_cells, n_perturbations, n_control_cells, per_context).
    params.update(split_counts(adata.obs, key=key_added))
    if categories is not None:
        names = sorted(categories)
        params["categories"] = {
            PERTURBATION: names,
            "category": [categories[n] for n in names],
        }
        perturbations = obs_strings(adata, PERTURBATION)
        values = [
            categories.get(p) if label != TRAIN else None
            for p, label in zip(perturbations, labels, strict=True)
        ]
        adata.obs[category_column] = pd.Categorical(
            values, categories=sorted(set(categories.values()))
        )
    adata.uns.setdefault(UNS_KEY, {}).setdefault(SPLITS_UNS, {})[key_added] = params


def read_params(adata: AnnData, key: str) -> dict[str, Any]:
    """The stored parameters of the split in ``obs[key]``, as plain Python values."""
    splits = split_params(adata)
    if key not in splits:
        raise ValueError(
            f"uns[{UNS_KEY!r}][{SPLITS_UNS!r}] has no entry {key!r} (entries: {sorted(splits)}): "
            f"make the split with a celltwin.split.split_* function (key_added={key!r})"
        )
    return splits[key]


def read_labels(adata: AnnData, key: str) -> np.ndarray:
    """The split labels in ``obs[key]``, validated."""
    if key not in adata.obs.columns:
        raise ValueError(
            f"obs has no split column {key!r}: make the split with a celltwin.split.split_* "
            f"function (key_added={key!r})"
        )
    column = adata.obs[key]
    n_missing = int(column.isna().sum())
    if n_missing:
        raise ValueError(
            f"obs[{key!r}] has {n_missing} cells without a split label: every cell must be "
            f"one of {list(LABELS)}; split again"
        )
    labels = column.astype(str).to_numpy(dtype=object)
    unknown = sorted(set(labels.tolist()) - set(LABELS))
    if unknown:
        raise ValueError(
            f"obs[{key!r}] holds unknown labels {unknown}: every cell must be one of {list(LABELS)}"
        )
    return labels
