"""``sources``: the public method of the models that say what each prediction borrowed from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from celltwin._keys import SOURCE_COLUMNS
from celltwin.models import ContextShiftBaseline, TransitionModel

TINY = dict(n_members=1, max_steps=10, hidden=8, n_latent=6, cells=8, patience=1, progress=False)
#: The estimate ``predict_effects`` reports (obs['source']) for each kind of source.
ESTIMATE = {"measured": "own", "cell states": "context", "kernel": "context", "dose": "dose"}


def test_transition_sources_follow_the_estimate_it_predicts_from(experiment) -> None:
    data = experiment
    model = TransitionModel(**TINY).fit(data.adata)
    conditions = [
        ("A", data.seen_single),  # measured
        ("A", data.held_combo),  # parts measured alone in A
        ("C", data.seen_single),  # unseen context: transferred
        ("C", data.held_single),  # never measured: from the data's gene features
    ]
    table = model.sources(data.adata, conditions=conditions)
    assert list(table.columns) == list(SOURCE_COLUMNS)
    effects = model.predict_effects(data.adata, conditions=conditions)
    for (context, pert), used in zip(conditions, effects.obs["source"], strict=True):
        rows = table[table["condition"] == f"{context}:{pert}"]
        kinds = {k.removeprefix("part: ") for k in rows["kind"]}
        if used == "combination":
            assert all(k.startswith("part: ") for k in rows["kind"])
        elif used == "features":
            assert kinds == {"features"} and rows["weight"].between(-1, 1).all()
        else:
            assert {ESTIMATE[k] for k in kinds} == {used}, (context, pert, kinds, used)
        if used != "features":
            np.testing.assert_allclose(rows["weight"].sum(), 1.0, atol=1e-12)
    transferred = table[table["condition"] == f"C:{data.seen_single}"]
    assert set(transferred["context"]) <= {"A", "B"} and set(transferred["source"]) == {
        data.seen_single
    }
    # Training contexts need no cells: the same sources from the fitted state alone.
    alone = model.sources(conditions=conditions[:2])
    pd.testing.assert_frame_equal(alone, table[table["condition"].isin(alone["condition"])])


def test_context_shift_sources_are_the_contexts_it_averages(experiment) -> None:
    data = experiment
    model = ContextShiftBaseline().fit(data.adata)
    table = model.sources(conditions=[("C", data.seen_single)], top=1)
    assert len(table) == 1 and table["weight"].iloc[0] == 0.5
