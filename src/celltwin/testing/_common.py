"""What every check shares: expectations that raise AssertionError, clones, cached fits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from ..models import CellModel, Model, SignatureModel
from ._data import cell_data, signature_data

M = TypeVar("M", bound=Model)
#: What fit must say of a fit parameter it does not take: a TypeError naming it.
UNEXPECTED = r"unexpected .*'celltwin_bogus_fit_parameter'"


def expect(condition: object, message: str) -> None:
    """Raise :class:`AssertionError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


@contextmanager
def expect_raises(
    error: type[BaseException] | tuple[type[BaseException], ...], match: str, *, what: str
) -> Iterator[None]:
    """Expect the block to raise ``error`` with a message matching the regex ``match``."""
    try:
        yield
    except error as err:
        if not re.search(match, str(err)):
            raise AssertionError(
                f"{what}: raised {type(err).__name__} without {match!r} in its message: {err}"
            ) from err
    except Exception as err:
        raise AssertionError(f"{what}: expected {error}, got {type(err).__name__}: {err}") from err
    else:
        raise AssertionError(f"{what}: expected {error}, nothing was raised")


def clone(model: M) -> M:
    """A new, unfitted model of the same class with the same parameters (sklearn's clone)."""
    return type(model)(**model.get_params())


def fit_on_data(model: M) -> M:
    """Fit ``model`` on the shared data of its kind and return it."""
    if isinstance(model, SignatureModel):
        model.fit(signature_data().scores)
        return model
    if isinstance(model, CellModel):
        model.fit(cell_data().adata)
        return model
    raise TypeError(
        f"{type(model).__name__} is neither a CellModel nor a SignatureModel: the checks know "
        "how to fit and predict those two kinds of celltwin.models.Model."
    )


_FITTED: dict[tuple[type, str], Model] = {}


def fitted(model: M) -> M:
    """A clone of ``model`` fitted on the shared data, fitted once per process and parameters.

    Checks only predict with it and save it, never change it.
    """
    key = (type(model), repr(model))
    if key not in _FITTED:
        _FITTED[key] = fit_on_data(clone(model))
    return cast(M, _FITTED[key])


def predict_seen(model: Model, **options: Any) -> Any:
    """Predictions of the trained conditions every model of the kind predicts."""
    if isinstance(model, SignatureModel):
        return model.predict(conditions=signature_data().seen)
    data = cell_data()
    return model.predict(data.adata, conditions=data.seen, **options)
