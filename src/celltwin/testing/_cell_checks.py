"""Checks of the models predicting from control cells (``"cells"`` and ``"pseudobulk"``).

Each check takes an unfitted model (its parameters are what is checked) and raises
:class:`AssertionError` naming what failed.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._keys import CONTEXT, CONTROL, PERTURBATION, PERTURBATION_TYPE, SPLIT, TRAIN, UNS_KEY
from ..models import CellModel, NotFittedError, UnseenConditionError, conditions_of
from ._common import UNEXPECTED, clone, expect, expect_raises, fitted, predict_seen
from ._data import cell_data


def _n_controls(adata: ad.AnnData, context: str) -> int:
    obs = adata.obs
    return int(((obs[CONTEXT] == context) & (obs[PERTURBATION] == CONTROL)).sum())


def check_init_only_stores_parameters(model: CellModel) -> None:
    """``__init__`` stores its parameters and nothing else; unfitted models refuse to predict."""
    model = clone(model)
    expect(vars(model) == model.get_params(), f"vars(model) != get_params(): {vars(model)}")
    learned = [a for a in vars(model) if a.endswith("_")]
    expect(not learned, f"__init__ sets learned attributes {learned}")
    again = clone(model)
    expect(again.get_params() == model.get_params(), "cloning changes the parameters")
    expect(type(model).__name__ in repr(model), f"repr {model!r} does not name the class")
    with expect_raises(NotFittedError, "not fitted", what="predict before fit"):
        model.predict(ad.AnnData(np.zeros((1, 1))), conditions=[("A", "X")])


def check_fit_returns_self_and_reads_training_cells_only(model: CellModel) -> None:
    """fit returns the model, learns from the training cells and leaves the data unchanged."""
    data = cell_data()
    adata = data.adata
    before = adata.obs.copy()
    model = clone(model)
    expect(model.fit(adata) is model, "fit does not return self")
    expect(model.genes_ == list(adata.var_names), "genes_ is not the training gene list")
    n_train = int((adata.obs[SPLIT] == TRAIN).sum())
    expect(model.n_train_cells_ == n_train, f"n_train_cells_ != {n_train}")
    seen = set(model.conditions_[PERTURBATION])
    expect(
        data.held_single not in seen and data.held_combo not in seen,
        "conditions_ lists test conditions",
    )
    expect(
        data.unseen_context not in set(model.conditions_[CONTEXT]),
        "conditions_ lists the test context",
    )
    expect(data.unseen_context in model.contexts_, "contexts_ misses a control-only context")
    pd.testing.assert_frame_equal(adata.obs, before)  # the input is not modified
    with expect_raises(TypeError, UNEXPECTED, what="fit(bogus=...)"):
        clone(model).fit(adata, celltwin_bogus_fit_parameter=1)


def check_fit_never_reads_test_cells(model: CellModel) -> None:
    """Poisoned or dropped test cells change nothing: only training cells are read."""
    data = cell_data()
    adata = data.adata
    poisoned = adata.copy()
    x = poisoned.X.toarray() if sp.issparse(poisoned.X) else np.array(poisoned.X)
    test_rows = np.flatnonzero(poisoned.obs[SPLIT].to_numpy() != TRAIN)
    x[test_rows[::2]] = np.nan
    x[test_rows[1::2]] = 1e6
    poisoned.X = sp.csr_matrix(x)
    # The poison is real: a model that read every cell would fail on it.
    with expect_raises(ValueError, "NaN", what="fit on every cell of poisoned data"):
        clone(model).fit(poisoned, split_key=None)

    dropped = adata[adata.obs[SPLIT].to_numpy() == TRAIN].copy()
    reference = predict_seen(fitted(model), seed=1)
    for training_data in (poisoned, dropped):
        pred = predict_seen(clone(model).fit(training_data), seed=1)
        np.testing.assert_array_equal(pred.X, reference.X)


def check_prediction_is_canonical(model: CellModel) -> None:
    """Predictions: training genes, float32, finite, >= 0, canonical obs, the declared kind."""
    data, model = cell_data(), fitted(model)
    adata, conditions = data.adata, data.seen
    pred = model.predict(adata, conditions=conditions)
    expect(list(pred.var_names) == model.genes_, "var_names are not the training genes")
    expect(pred.X.dtype == np.float32, f"X is {pred.X.dtype}, not float32")
    expect(np.all(np.isfinite(pred.X)) and pred.X.min() >= 0, "X is not finite and >= 0")
    expect(pred.obs_names.is_unique, "obs_names are not unique")
    for key in (CONTEXT, PERTURBATION, PERTURBATION_TYPE):
        expect(key in pred.obs.columns, f"obs has no column {key!r}")
    expect(set(pred.obs[PERTURBATION_TYPE]) == {"crispr_ko"}, "perturbation_type is not kept")
    info = pred.uns[UNS_KEY]["prediction"]
    expect(info["kind"] == model.predicts, f"uns prediction kind {info['kind']!r}")
    expect(info["model"] == model.name, f"uns prediction model {info['model']!r}")
    normalization = adata.uns[UNS_KEY]["normalization"]
    expect(pred.uns[UNS_KEY]["normalization"] == normalization, "normalization not carried")
    counts = pred.obs.groupby([CONTEXT, PERTURBATION]).size()
    for context, perturbation in conditions:
        expected = _n_controls(adata, context) if model.predicts == "cells" else 1
        expect(counts[(context, perturbation)] == expected, f"rows of {perturbation}")
    # Asking for the control gives the controls (every model's effect of "control" is none).
    ctrl = model.predict(adata, conditions=[("B", CONTROL)])
    rows = ((adata.obs[CONTEXT] == "B") & (adata.obs[PERTURBATION] == CONTROL)).to_numpy()
    truth = adata.X[rows].toarray()
    expected = truth if model.predicts == "cells" else truth.mean(axis=0, keepdims=True)
    np.testing.assert_allclose(ctrl.X, expected, rtol=1e-5, atol=1e-5)


def check_n_cells_and_seed(model: CellModel) -> None:
    """``n_cells`` and the ``n_cells`` column set the rows; the seed sets the draw."""
    data, model = cell_data(), fitted(model)
    adata, conditions = data.adata, data.seen
    cells = model.predicts == "cells"
    a = model.predict(adata, conditions=conditions, n_cells=7, seed=5)
    b = model.predict(adata, conditions=conditions, n_cells=7, seed=5)
    c = model.predict(adata, conditions=conditions, n_cells=7, seed=6)
    np.testing.assert_array_equal(a.X, b.X)
    expect(a.n_obs == (7 * len(conditions) if cells else len(conditions)), "n_cells=7 rows")
    differs = not np.array_equal(a.X, c.X)
    expect(differs if cells else not differs, "another seed must change cells, not means")
    # More cells than controls: drawn with replacement.
    many = model.predict(adata, conditions=conditions[:1], n_cells=100)
    expect(many.n_obs == (100 if cells else 1), "n_cells beyond the controls")
    # A conditions table with an n_cells column (here: the training conditions' sizes).
    table = conditions_of(adata, split=TRAIN)
    table = table[table[CONTEXT].isin(["A", "B"])].head(3)
    sized = model.predict(adata, conditions=table)
    expect(sized.n_obs == (int(table["n_cells"].sum()) if cells else len(table)), "n_cells col")


def check_genes_are_matched_by_name(model: CellModel) -> None:
    """Genes in another order, or extra genes, change nothing; a missing gene is refused."""
    data, model = cell_data(), fitted(model)
    adata, conditions = data.adata, data.seen
    reference = model.predict(adata, conditions=conditions)
    x = adata.X.toarray()
    order = np.arange(adata.n_vars)[::-1]
    shuffled = ad.AnnData(
        np.hstack([x[:, order], np.ones((adata.n_obs, 1))]),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=[*adata.var_names[order], "EXTRA"]),
    )
    np.testing.assert_array_equal(model.predict(shuffled, conditions=conditions).X, reference.X)
    missing = adata[:, adata.var_names[1:]].copy()
    message = rf"lacks 1 of the {adata.n_vars} training genes"
    with expect_raises(ValueError, message, what="predict without a training gene"):
        model.predict(missing, conditions=conditions)


def check_contexts_without_control_cells_are_refused(model: CellModel) -> None:
    """A requested context without control cells in the query is refused, naming it."""
    data, model = cell_data(), fitted(model)
    adata = data.adata
    no_a_controls = adata[
        ~((adata.obs[CONTEXT] == "A") & (adata.obs[PERTURBATION] == CONTROL)).to_numpy()
    ].copy()
    message = r"no control cells of context\(s\) \['A'\]"
    with expect_raises(ValueError, message, what="predict without controls of A"):
        model.predict(no_a_controls, conditions=data.seen)


def _with_new_context(adata: ad.AnnData, *, source: str, new: str) -> ad.AnnData:
    """adata plus a copy of ``source``'s control cells labelled as context ``new``."""
    obs = adata.obs.astype(str)
    rows = ((obs[CONTEXT] == source) & (obs[PERTURBATION] == CONTROL)).to_numpy()
    extra_obs = obs[rows].copy()
    extra_obs[CONTEXT] = new
    extra_obs.index = pd.Index([f"{new}_{i}" for i in extra_obs.index])
    return ad.AnnData(
        sp.vstack([adata.X, adata.X[rows]]).tocsr(),
        obs=pd.concat([obs, extra_obs]),
        var=pd.DataFrame(index=adata.var_names),
    )


def check_unseen_conditions(model: CellModel, handles_unseen: frozenset[str] | None) -> None:
    """Unseen perturbations, combinations and contexts: predicted or refused as declared.

    ``handles_unseen`` is the model's declaration (:attr:`ModelSpec.handles_unseen`); ``None``
    (an unregistered model) only requires a finite prediction or an
    :class:`UnseenConditionError`, never another error or a silent NaN.
    """
    data, model = cell_data(), fitted(model)
    query = _with_new_context(data.adata, source="C", new="D")
    cases = {
        "perturbation": [("A", data.held_single)],
        "combination": [("A", data.held_combo)],
        # C has training controls but no perturbed training cells; D was never seen at all.
        "context": [("C", data.seen_single), ("D", data.seen_single)],
    }
    for kind, conditions in cases.items():
        what = f"unseen {kind} {conditions}"
        if handles_unseen is None:
            try:
                pred = model.predict(query, conditions=conditions)
            except UnseenConditionError:
                continue
            expect(np.all(np.isfinite(pred.X)), f"{what}: non-finite prediction")
        elif kind in handles_unseen:
            pred = model.predict(query, conditions=conditions)
            expect(np.all(np.isfinite(pred.X)), f"{what}: non-finite prediction")
            expect(set(pred.obs[PERTURBATION]) == {c[1] for c in conditions}, f"{what}: rows")
        else:
            with expect_raises(UnseenConditionError, f"{model.name} cannot predict", what=what):
                model.predict(query, conditions=conditions)


#: The checks of a cell model, in the order they run (the unseen check takes a declaration).
CELL_CHECKS = (
    check_init_only_stores_parameters,
    check_fit_returns_self_and_reads_training_cells_only,
    check_fit_never_reads_test_cells,
    check_prediction_is_canonical,
    check_n_cells_and_seed,
    check_genes_are_matched_by_name,
    check_contexts_without_control_cells_are_refused,
)
