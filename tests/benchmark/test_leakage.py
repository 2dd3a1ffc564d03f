"""No held-out information reaches a model: poisoning the held-out data changes nothing.

For every registered suite (its smoke options), one fold is built twice: from the data as is and
from data whose held-out cells (cell suites) or held-out signatures (signature suites) hold
garbage. The features the models see and every model's predictions must be identical, while
the truth visibly changed (so the poison did reach the data). Predictions are checked end to
end for the baselines and, with tiny settings passed through the suite's ``model_params`` option
(the runner's code path), for the learned models of :data:`_TINY_LEARNED`.

A suite is skipped only when a resource it reads is absent here (a dataset that cannot be
fetched, a file of the shared data folder), with the reason; any other error while building a
fold is a bug and fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import CONTEXT, PERTURBATION, SPLIT
from celltwin._settings import shared_dir
from celltwin.benchmark import (
    Suite,
    poison_held_out,
    predict_conditions,
    role,
    select_genes,
    suites,
)
from celltwin.data import DownloadError


@pytest.fixture(scope="module")
def sim_split():
    """Simulated cells with one context's perturbed cells held out."""
    from celltwin.simulate import simulate
    from celltwin.split import split_contexts

    adata = simulate(
        n_genes=80,
        n_tfs=8,
        contexts=("A", "B"),
        n_perturbations=4,
        combinations=0,
        cells_per_condition=20,
        seed=1,
    ).adata
    split_contexts(adata, test="B")
    return adata


#: Options of a tiny run of each signature suite (they have no ``smoke`` option).
_SIGNATURE_SMOKE = {"max_perturbations": 12, "n_folds": 2}

#: Learned models checked end to end, with parameters that fit a smoke fold in seconds.
_TINY_LEARNED: dict[str, dict[str, object]] = {
    "transition": {
        "n_members": 2,
        "max_steps": 20,
        "hidden": 16,
        "n_latent": 8,
        "cells": 16,
        "patience": 2,
        "progress": False,
    },
}
#: (model, suite) pairs where the model refuses every held-out condition of the smoke fold
#: (``transition`` has no dose features for unseen doses): there the refusals are compared.
_REFUSES_ALL = {("transition", "sim-doses")}


def _dense(x: object) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


T = TypeVar("T")


def _built_or_skip(build: Callable[[], T]) -> T:
    """``build()``; skips only when a resource it reads is absent here, else errors propagate.

    Absent resources are clearly identified: a dataset none of whose sources can be fetched
    (:class:`celltwin.data.DownloadError`) or a missing file of the shared data folder (a
    ``FileNotFoundError`` naming a path in :func:`celltwin._settings.shared_dir`). A
    ``KeyError``, ``ImportError`` or any other error while building a fold is a bug: it fails.
    """
    try:
        return build()
    except DownloadError as err:
        pytest.skip(f"suite data cannot be fetched here: {err}")
    except FileNotFoundError as err:
        if str(shared_dir()) not in str(err):
            raise
        pytest.skip(f"a file of the shared data folder is absent here: {err}")


def _cell_case(suite: Suite) -> None:
    task = suite.task
    assert task is not None
    opts = dict(suite.smoke)
    fold = _built_or_skip(lambda: task.folds(**opts)[0])
    clean = task.fold_data(fold, **opts)
    dirty = task.fold_data(fold, poison=True, **opts)

    # The poison reached the held-out cells ...
    assert not np.allclose(_dense(clean.truth.X), _dense(dirty.truth.X))
    # ... and nothing a model sees changed.
    assert clean.genes == dirty.genes
    np.testing.assert_array_equal(_dense(clean.train.X), _dense(dirty.train.X))
    np.testing.assert_array_equal(_dense(clean.query.X), _dense(dirty.query.X))
    pd.testing.assert_frame_equal(clean.conditions, dirty.conditions)
    # A model sees (train, query, conditions, fit arguments): all identical, for every model.
    for name in suite.models:
        if task.skip_reason(name):
            continue
        a = _built_or_skip(partial(task.model_fit_kwargs, name, clean, opts))
        b = task.model_fit_kwargs(name, dirty, opts)
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, pd.DataFrame):
                pd.testing.assert_frame_equal(value, b[key])
            else:
                assert value == b[key]
    # Predictions are functions of those; checked end to end for the (fast) baselines and the
    # learned models given tiny settings, built as the runner builds them (make_model with the
    # suite's model_params option, fit on the fold's training cells, predict_conditions).
    defaults = task.options(opts)["model_params"] or {}
    run_opts = {
        **opts,
        "model_params": {
            **defaults,
            **{name: {**defaults.get(name, {}), **p} for name, p in _TINY_LEARNED.items()},
        },
    }
    n_run = {"baseline": 0, "model": 0}
    for name in suite.models:
        kind = role(name)
        if task.skip_reason(name) or (kind != "baseline" and name not in _TINY_LEARNED):
            continue
        preds, refusals = [], []
        for fd in (clean, dirty):
            model = task.make_model(name, seed=0, params=task.model_params(name, run_opts))
            model.fit(fd.train, **task.model_fit_kwargs(name, fd, run_opts))
            pred, refused = predict_conditions(model, fd.query, conditions=fd.conditions, seed=0)
            preds.append(pred)
            refusals.append(refused)
        assert refusals[0] == refusals[1], name
        if preds[0] is None:
            assert preds[1] is None
            continue
        n_run[kind] += 1
        np.testing.assert_array_equal(_dense(preds[0].X), _dense(preds[1].X), err_msg=name)
        pd.testing.assert_frame_equal(preds[0].obs, preds[1].obs)
    assert n_run["baseline"] >= 2
    learned = [
        m
        for m in suite.models
        if m in _TINY_LEARNED and not task.skip_reason(m) and (m, suite.name) not in _REFUSES_ALL
    ]
    assert n_run["model"] >= len(learned), (n_run, learned)


def _signature_case(suite: Suite) -> None:
    from celltwin.benchmark._suites import _signatures as ss
    from celltwin.benchmark._suites import _transfer
    from celltwin.io import RankSignatures

    transfer = ss.SUITES.get(suite.name)
    if transfer is None:
        pytest.fail(f"signature suite {suite.name!r} is not a context-transfer suite; add a check")
    opts = dict(_SIGNATURE_SMOKE)
    if "signatures" in transfer.defaults:
        folder = shared_dir() / "data" / "signatures"
        opts["signatures"] = [
            f"K562={folder / 'replogle2022_k562_top1000up.json.gz'}",
            f"RPE1={folder / 'replogle2022_rpe1_top1000up.json.gz'}",
        ]
    split = _built_or_skip(lambda: transfer.splits(**opts)[0])
    sigs = transfer._signatures(transfer._options(opts))

    table = sigs.table.copy()
    hidden = table[CONTEXT].isin(split.holdout) & table[PERTURBATION].isin(split.test)
    assert hidden.any()
    rng = np.random.default_rng(0)
    garbage = [f"POISON{i}" for i in range(50)]
    for col in ("up_full", "up"):
        table.loc[hidden, col] = pd.Series(
            [tuple(rng.permutation(list(g) + garbage)) for g in table.loc[hidden, col]],
            index=table.index[hidden],
            dtype=object,
        )
    dirty = RankSignatures(table)

    models = list(suite.models)
    clean_pred = _transfer.fold_predictions(sigs, split, models=models)
    dirty_pred = _transfer.fold_predictions(dirty, split, models=models)
    for name in models:
        np.testing.assert_array_equal(
            _dense(clean_pred[name].X), _dense(dirty_pred[name].X), err_msg=name
        )
        # The columns are the gene universe the model saw (training signatures only).
        assert list(clean_pred[name].var_names) == list(dirty_pred[name].var_names)
        assert not set(dirty_pred[name].var_names) & set(garbage)


@pytest.mark.parametrize("suite", suites(), ids=lambda s: s.name)
def test_poisoned_held_out_data_changes_nothing(suite: Suite) -> None:
    if suite.task is not None:
        _cell_case(suite)
    elif suite.name == "lincs-doses":
        pytest.skip("lincs-doses: checked in tests/benchmark/test_lincs_suite.py (poisoned wells)")
    elif suite.kind == "signatures":
        _signature_case(suite)
    else:
        pytest.fail(f"suite {suite.name!r} has no leakage check; add one here")


def test_the_new_real_suites_are_covered() -> None:
    """The leakage check above runs on every registered suite; these must be among them."""
    names = {s.name for s in suites()}
    assert {
        "norman2019-combinations",
        "norman2019-unseen-single",
        "mcfaline2023-heldout-line",
        "mcfaline2023-unseen-knockdown",
    } <= names


def test_the_poison_would_be_caught(sim_split) -> None:
    """Selecting genes on all cells (the leak the folds prevent) does see the poison."""
    dirty = poison_held_out(sim_split)
    assert select_genes(sim_split, n_top_genes=20) != select_genes(dirty, n_top_genes=20)
    train = (sim_split.obs[SPLIT] == "train").to_numpy()
    assert select_genes(sim_split[train], n_top_genes=20) == select_genes(
        dirty[train], n_top_genes=20
    )
