"""Checks of the signature models (``"signatures"``): score rows in, score rows out.

Each check takes an unfitted model and raises :class:`AssertionError` naming what failed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._keys import CONTEXT, PERTURBATION, UNS_KEY
from ..models import NotFittedError, SignatureModel, UnseenConditionError
from ._common import UNEXPECTED, clone, expect, expect_raises, fitted
from ._data import signature_data


def check_signature_init_only_stores_parameters(model: SignatureModel) -> None:
    """``__init__`` stores its parameters and nothing else; unfitted models refuse to predict."""
    model = clone(model)
    expect(vars(model) == model.get_params(), f"vars(model) != get_params(): {vars(model)}")
    learned = [a for a in vars(model) if a.endswith("_")]
    expect(not learned, f"__init__ sets learned attributes {learned}")
    expect(clone(model).get_params() == model.get_params(), "cloning changes the parameters")
    expect(type(model).__name__ in repr(model), f"repr {model!r} does not name the class")
    with expect_raises(NotFittedError, "not fitted", what="predict before fit"):
        model.predict(conditions=[("c0", "p0")])


def check_signature_fit_returns_self(model: SignatureModel) -> None:
    """fit returns the model, records the training genes and pairs, leaves the data unchanged."""
    scores = signature_data().scores
    before = scores.copy()
    model = clone(model)
    expect(model.fit(scores) is model, "fit does not return self")
    expect(model.genes_ == list(scores.var_names), "genes_ is not the training gene list")
    pairs = scores.obs[[CONTEXT, PERTURBATION]].reset_index(drop=True).astype(object)
    pd.testing.assert_frame_equal(model.pairs_.astype(object), pairs)
    np.testing.assert_array_equal(scores.X, before.X)
    pd.testing.assert_frame_equal(scores.obs, before.obs)
    with expect_raises(TypeError, UNEXPECTED, what="fit(bogus=...)"):
        clone(model).fit(scores, celltwin_bogus_fit_parameter=1)


def check_signature_prediction_is_canonical(model: SignatureModel) -> None:
    """One finite float32 row per pair on the training genes; obs and uns as documented."""
    data, model = signature_data(), fitted(model)
    pred = model.predict(conditions=data.seen)
    expect(pred.shape == (len(data.seen), len(model.genes_)), f"shape {pred.shape}")
    expect(list(pred.var_names) == model.genes_, "var_names are not the training genes")
    expect(pred.X.dtype == np.float32 and np.isfinite(pred.X).all(), "X not finite float32")
    expect(pred.obs_names.is_unique, "obs_names are not unique")
    got = list(zip(pred.obs[CONTEXT], pred.obs[PERTURBATION], strict=True))
    expect(got == data.seen, f"obs pairs {got} != requested {data.seen}")
    info = pred.uns[UNS_KEY]["prediction"]
    expect(info["kind"] == model.predicts, f"uns prediction kind {info['kind']!r}")
    expect(info["model"] == model.name, f"uns prediction model {info['model']!r}")
    again = model.predict(conditions=pd.DataFrame(data.seen, columns=[CONTEXT, PERTURBATION]))
    np.testing.assert_array_equal(again.X, pred.X)


def check_signature_nan_scores(model: SignatureModel) -> None:
    """Scores with NaN (genes not measured, one gene measured nowhere) give finite rows."""
    data = signature_data()
    train = data.scores.copy()
    x = np.array(train.X)
    x[np.random.default_rng(0).random(x.shape) < 0.3] = np.nan
    x[:, 0] = np.nan
    train.X = x
    pred = clone(model).fit(train).predict(conditions=data.seen)
    expect(np.isfinite(pred.X).all(), "NaN in the training scores gave non-finite predictions")


def check_signature_unseen_conditions(
    model: SignatureModel, handles_unseen: frozenset[str] | None
) -> None:
    """Unseen contexts and perturbations: predicted or refused as declared (``None``: either
    a finite prediction or :class:`UnseenConditionError`)."""
    data, model = signature_data(), fitted(model)
    cases = {"context": data.unseen_context, "perturbation": data.unseen_perturbation}
    for kind, conditions in cases.items():
        what = f"unseen {kind} {conditions}"
        if handles_unseen is None:
            try:
                pred = model.predict(conditions=conditions)
            except UnseenConditionError:
                continue
            expect(np.isfinite(pred.X).all(), f"{what}: non-finite prediction")
        elif kind in handles_unseen:
            pred = model.predict(conditions=conditions)
            expect(np.isfinite(pred.X).all(), f"{what}: non-finite prediction")
        else:
            with expect_raises(UnseenConditionError, "cannot predict", what=what):
                model.predict(conditions=conditions)


#: The checks of a signature model, in the order they run (the unseen check is separate).
SIGNATURE_CHECKS = (
    check_signature_init_only_stores_parameters,
    check_signature_fit_returns_self,
    check_signature_prediction_is_canonical,
    check_signature_nan_scores,
)
