"""Leakage checks: does the split stored on the data keep what it holds out away from training?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST, TRAIN, VAL
from ._core import (
    LABELS,
    Unit,
    category,
    cell_units,
    columns_to_units,
    components,
    control_mask,
    obs_strings,
    read_labels,
    read_params,
    require_columns,
    trained_singles,
)

#: At most this many examples are quoted per problem.
_N_EXAMPLES = 5


class SplitLeakageError(ValueError):
    """A stored split lets held-out information into training, or contradicts its parameters."""


def _examples(items: list[Any]) -> str:
    """A few of ``items``, sorted; one-column units are shown as their bare value."""
    items = sorted(items)
    shown = [i[0] if isinstance(i, tuple) and len(i) == 1 else i for i in items[:_N_EXAMPLES]]
    more = f" (and {len(items) - _N_EXAMPLES} more)" if len(items) > _N_EXAMPLES else ""
    return ", ".join(repr(s) for s in shown) + more


# --- checks every split must pass --------------------------------------------------------------
# Each takes the data, the labels and the stored parameters and returns a list of problems.


def _controls_in_train(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> list[str]:
    n = int(np.sum(control_mask(adata) & (labels != TRAIN)))
    if n:
        return [
            f"{n} control cells are not in {TRAIN!r}: controls are the inputs of every prediction"
        ]
    return []


def _unit_label_counts(
    adata: AnnData, labels: np.ndarray, unit: list[str]
) -> tuple[list[Unit], dict[str, np.ndarray]]:
    """The distinct units and, per label, how many perturbed cells of each unit carry it."""
    units, codes = cell_units(adata, unit)
    perturbed = ~control_mask(adata)
    counts = {
        label: np.bincount(codes[perturbed & (labels == label)], minlength=len(units))
        for label in LABELS
    }
    return units, counts


def _units_uniform(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> list[str]:
    unit = params["unit"]
    units, counts = _unit_label_counts(adata, labels, unit)
    n_labels = sum((c > 0).astype(int) for c in counts.values())
    mixed = [units[i] for i in np.flatnonzero(n_labels > 1)]
    if mixed:
        return [
            f"{len(mixed)} held-out units {tuple(unit)} have cells in more than one split "
            f"(e.g. {_examples(mixed)}): all cells of a unit must share one label"
        ]
    return []


def _declared_units(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> list[str]:
    unit = params["unit"]
    units, counts = _unit_label_counts(adata, labels, unit)
    index = {u: i for i, u in enumerate(units)}
    declared = {label: columns_to_units(unit, params[label]) for label in (TEST, VAL)}
    problems = []
    overlap = declared[TEST] & declared[VAL]
    if overlap:
        problems.append(f"units declared both val and test: {_examples(list(overlap))}")
    for label in (TEST, VAL):
        for other in LABELS:
            if other == label:
                continue
            found = [u for u in declared[label] if u in index and counts[other][index[u]] > 0]
            if found:
                problems.append(
                    f"{len(found)} {label} units have {other} cells (e.g. {_examples(found)})"
                )
        undeclared = {units[i] for i in np.flatnonzero(counts[label] > 0)} - declared[label]
        if undeclared:
            problems.append(
                f"{len(undeclared)} units labelled {label} are not declared in the stored split "
                f"(e.g. {_examples(list(undeclared))})"
            )
    return problems


def _held_out_components(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> list[str]:
    held = params["held_out_components"]
    test, val = set(held[TEST]), set(held[VAL])
    problems = []
    if test & val:
        problems.append(f"components held out both for val and test: {_examples(list(test & val))}")
    perturbations = obs_strings(adata, PERTURBATION)
    for label, forbidden, where in ((TRAIN, test | val, "held-out"), (VAL, test, "test")):
        seen = set(perturbations[labels == label].tolist()) - {CONTROL}
        leaking = sorted(p for p in seen if set(components(p)) & forbidden)
        if leaking:
            problems.append(
                f"{len(leaking)} {label} perturbations contain a {where} component "
                f"(e.g. {_examples(leaking)})"
            )
    return problems


_GENERIC_CHECKS: tuple[Callable[[AnnData, np.ndarray, dict[str, Any]], list[str]], ...] = (
    _controls_in_train,
    _units_uniform,
    _declared_units,
    _held_out_components,
)


# --- checks of one strategy --------------------------------------------------------------------


def _few_shot_only(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> list[str]:
    """Held-out contexts have no perturbed training cells other than the declared few-shot ones."""
    require_columns(adata, [CONTEXT])
    held = set(params["test_contexts"]) | set(params["val_contexts"])
    few_shot = columns_to_units([CONTEXT, PERTURBATION], params["few_shot"])
    contexts = obs_strings(adata, CONTEXT)
    perturbations = obs_strings(adata, PERTURBATION)
    in_held = np.isin(contexts, list(held)) & ~control_mask(adata) & (labels == TRAIN)
    extra = {(c, p) for c, p in zip(contexts[in_held], perturbations[in_held], strict=True)}
    extra -= few_shot
    if extra:
        return [
            f"{len(extra)} (context, perturbation) pairs of held-out contexts have training cells "
            f"but are not declared few-shot (e.g. {_examples(list(extra))})"
        ]
    return []


def _categories_match(adata: AnnData, labels: np.ndarray, params: dict[str, Any]) -> list[str]:
    """Each held-out combination's stored category equals the one recomputed from the labels."""
    stored = dict(
        zip(params["categories"][PERTURBATION], params["categories"]["category"], strict=True)
    )
    singles = trained_singles(adata, labels)
    wrong = [p for p, c in stored.items() if category(p, singles) != c]
    if wrong:
        return [
            f"{len(wrong)} held-out perturbations have a stored category that the training cells "
            f"contradict (e.g. {_examples(wrong)}: now {category(sorted(wrong)[0], singles)!r})"
        ]
    return []


#: Extra checks per strategy name (strategies not listed need only the generic checks).
_STRATEGY_CHECKS: dict[
    str, tuple[Callable[[AnnData, np.ndarray, dict[str, Any]], list[str]], ...]
] = {
    "contexts": (_few_shot_only,),
    "combinations": (_categories_match,),
}
#: Every strategy a split may record.
STRATEGIES = ("perturbations", "contexts", "combinations", "drugs", "doses")


def check_leakage(adata: AnnData, *, key: str = SPLIT) -> None:
    """Raise when the split stored in ``obs[key]`` leaks held-out information into training.

    The check reads the labels in ``obs[key]`` and the parameters in
    ``uns['celltwin']['splits'][key]`` and verifies that

    * every control cell is ``train``;
    * all perturbed cells of one held-out unit (a perturbation; a (context, perturbation) pair; a
      (perturbation, dose) pair, as the strategy declares) share one label;
    * every declared test / val unit has only test / val cells, no unit is declared both, and no
      cell is labelled val or test without its unit being declared;
    * no training perturbation contains a held-out component (an unseen single of a combination
      split, an unseen drug), and no val perturbation contains a test component;
    * for context splits, held-out contexts have no perturbed training cells besides the declared
      few-shot pairs;
    * for combination splits, each held-out combination still has the stored number of components
      seen in training (``combo_seen0/1/2``).

    Parameters
    ----------
    adata
        Data with a split made by a ``celltwin.split.split_*`` function.
    key
        The split's obs column (its ``key_added``).

    Raises
    ------
    SplitLeakageError
        Listing every problem found.
    ValueError
        When there is no split under ``key``.
    """
    params = read_params(adata, key)
    labels = read_labels(adata, key)
    require_columns(adata, [PERTURBATION, *params["unit"]])
    strategy = params.get("strategy")
    if strategy not in STRATEGIES:
        raise ValueError(
            f"uns split {key!r} has unknown strategy {strategy!r}: expected one of {list(STRATEGIES)}"
        )
    problems: list[str] = []
    for check in (*_GENERIC_CHECKS, *_STRATEGY_CHECKS.get(strategy, ())):
        problems.extend(check(adata, labels, params))
    if problems:
        raise SplitLeakageError(
            f"split {key!r} ({strategy}) leaks or contradicts its stored parameters:\n- "
            + "\n- ".join(problems)
        )
