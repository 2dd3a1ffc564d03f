"""Held-out contexts: predict how a cell type or line never perturbed in training responds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST, VAL
from ._core import (
    Unit,
    as_name_list,
    assign,
    base_params,
    check_names,
    draw,
    obs_strings,
    require_columns,
    require_writable,
    store,
    units_to_columns,
)
from ._leakage import check_leakage


def split_contexts(
    adata: AnnData,
    *,
    test: str | Sequence[str],
    val: str | Sequence[str] | None = None,
    few_shot: int | Sequence[str] = 0,
    seed: int = 0,
    key_added: str = SPLIT,
) -> None:
    """Hold out whole contexts: their perturbed cells go to test (or val), their controls stay.

    This is the scGen / Virtual Cell Challenge setting: a model sees the controls of the held-out
    context (they are ``train``, as every control cell) and the perturbations in other contexts,
    and predicts the perturbed cells of the held-out context. With ``few_shot`` some of the
    context's perturbations stay in ``train`` as examples. The unit held out is the
    (context, perturbation) pair.

    Writes ``obs[key_added]`` and ``uns['celltwin']['splits'][key_added]`` in place; the latter
    records ``test_contexts``, ``val_contexts`` and the few-shot pairs (``few_shot``).

    Parameters
    ----------
    adata
        Canonical AnnData with ``obs['perturbation']`` and ``obs['context']``.
    test
        Context(s) whose perturbed cells are held out for test.
    val
        Context(s) held out for validation the same way (optional).
    few_shot
        An integer ``k``: in each held-out context, ``k`` perturbations drawn at random (from the
        sorted names, with ``seed``) stay in ``train``. Or a list of perturbations kept in
        ``train`` in every held-out context where they occur.
    seed
        Seed of ``numpy.random.default_rng`` for the few-shot draw.
    key_added
        obs column (and uns entry) the split is written to.

    Examples
    --------
    >>> split_contexts(adata, test="K562", few_shot=5)  # doctest: +SKIP
    """
    require_writable(adata, key_added)
    require_columns(adata, [PERTURBATION, CONTEXT])
    contexts = obs_strings(adata, CONTEXT)
    perturbations = obs_strings(adata, PERTURBATION)
    test_contexts, val_contexts = _held_contexts(test, val, sorted(set(contexts.tolist())))
    in_held = np.isin(contexts, test_contexts + val_contexts)
    few_shot_names, few_shot_k = _few_shot(few_shot, perturbations[in_held])

    rng = np.random.default_rng(seed)
    held: dict[str, list[Unit]] = {TEST: [], VAL: []}
    few_shot_pairs: list[Unit] = []
    for label, names in ((TEST, test_contexts), (VAL, val_contexts)):
        for context in names:
            items = sorted(set(perturbations[contexts == context].tolist()) - {CONTROL})
            if few_shot_names is not None:
                shots = sorted(set(few_shot_names) & set(items))
            else:
                shots = draw(items, few_shot_k, rng)
            if len(shots) >= len(items):
                raise ValueError(
                    f"not enough perturbations in context {context!r}: it has {len(items)} and "
                    f"{len(shots)} are kept as few-shot examples, leaving none to hold out; "
                    "lower few_shot"
                )
            few_shot_pairs += [(context, p) for p in shots]
            held[label] += [(context, p) for p in items if p not in shots]

    unit = [CONTEXT, PERTURBATION]
    labels = assign(adata, unit, held[TEST], held[VAL])
    params = base_params("contexts", seed=seed, unit=unit, test=held[TEST], val=held[VAL])
    params.update(
        test_contexts=test_contexts,
        val_contexts=val_contexts,
        few_shot_k=few_shot_k,
        few_shot=units_to_columns(unit, few_shot_pairs),
    )
    store(adata, labels, key_added=key_added, params=params)
    check_leakage(adata, key=key_added)


def _held_contexts(
    test: str | Sequence[str], val: str | Sequence[str] | None, available: list[str]
) -> tuple[list[str], list[str]]:
    """The test and val contexts, checked: known, disjoint, and leaving a training context."""
    test_contexts = check_names("test", as_name_list(test), available, "contexts")
    val_contexts = check_names("val", as_name_list(val), available, "contexts")
    if not test_contexts:
        raise ValueError(
            "'test' names no context: pass the context(s) to hold out, e.g. test='K562'"
        )
    if set(test_contexts) & set(val_contexts):
        raise ValueError(
            f"contexts {sorted(set(test_contexts) & set(val_contexts))} are in both 'test' and "
            "'val': a context is held out for one of them only"
        )
    if len(test_contexts) + len(val_contexts) >= len(available):
        raise ValueError(
            f"holding out contexts {test_contexts + val_contexts} leaves no training context "
            f"(contexts: {available}): keep at least one context for training"
        )
    return test_contexts, val_contexts


def _few_shot(few_shot: int | Sequence[str], held: np.ndarray) -> tuple[list[str] | None, int]:
    """``(names, -1)`` for named perturbations (checked against ``held``); ``(None, k)`` for k."""
    if isinstance(few_shot, int | np.integer):
        if few_shot < 0:
            raise ValueError(
                f"'few_shot' must be >= 0 (got {few_shot}): the number of perturbations per "
                "held-out context kept in training"
            )
        return None, int(few_shot)
    names = as_name_list(few_shot)
    check_names(
        "few_shot",
        names,
        sorted(set(held.tolist()) - {CONTROL}),
        "perturbations of the held-out contexts",
    )
    return names, -1
