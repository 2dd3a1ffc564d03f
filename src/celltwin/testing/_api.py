"""``check_model`` and ``parametrize_with_checks``: the conformance suite, for any model."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..models import MODELS, CellModel, Model, SignatureModel
from ._cell_checks import CELL_CHECKS, check_unseen_conditions
from ._persist_checks import PERSIST_CHECKS
from ._signature_checks import SIGNATURE_CHECKS, check_signature_unseen_conditions

#: A check: called with an unfitted model of the kind it checks; raises AssertionError.
Check = Callable[..., None]


def _declared_unseen(model: Model) -> frozenset[str] | None:
    """The registry's ``handles_unseen`` of a registered model (``None`` when unregistered)."""
    spec = MODELS.get(model.name)
    return spec.handles_unseen if spec is not None and spec.cls is type(model) else None


def _named(check: Callable[..., None], name: str, **kwargs: Any) -> Check:
    bound = functools.partial(check, **kwargs)
    functools.update_wrapper(bound, check)
    bound.__name__ = name  # type: ignore[attr-defined]  # partial objects take attributes
    return bound


def checks_of(model: Model, *, handles_unseen: Iterable[str] | None = None) -> Iterator[Check]:
    """The checks :func:`check_model` runs on ``model``, each a function of the model.

    Parameters
    ----------
    model
        An unfitted :class:`~celltwin.models.CellModel` or
        :class:`~celltwin.models.SignatureModel`.
    handles_unseen
        Which unseen conditions the model predicts (see
        :attr:`celltwin.models.ModelSpec.handles_unseen`); the others must raise
        :class:`~celltwin.models.UnseenConditionError`. Default: the registry's declaration
        for a registered model; for another, any unseen condition may be predicted (finite
        values) or refused, but nothing else.
    """
    declared = frozenset(handles_unseen) if handles_unseen is not None else _declared_unseen(model)
    if isinstance(model, SignatureModel):
        yield from SIGNATURE_CHECKS
        unseen: Callable[..., None] = check_signature_unseen_conditions
    elif isinstance(model, CellModel):
        yield from CELL_CHECKS
        unseen = check_unseen_conditions
    else:
        raise TypeError(
            f"check_model checks celltwin models: a CellModel (predicts cells or pseudobulk) or "
            f"a SignatureModel (got {type(model).__name__}). Fix: subclass one of them."
        )
    yield _named(unseen, unseen.__name__, handles_unseen=declared)
    yield from PERSIST_CHECKS


def _instance(model_or_cls: Model | type[Model]) -> Model:
    if isinstance(model_or_cls, type):
        if not issubclass(model_or_cls, Model):
            raise TypeError(f"{model_or_cls.__name__} is not a celltwin.models.Model subclass.")
        return model_or_cls()
    if not isinstance(model_or_cls, Model):
        raise TypeError(
            f"check_model takes a celltwin.models.Model or its class "
            f"(got {type(model_or_cls).__name__})."
        )
    return model_or_cls


def check_model(
    model_or_cls: Model | type[Model], *, handles_unseen: Iterable[str] | None = None
) -> None:
    """Check that a model follows the celltwin model contract; raise AssertionError if not.

    The checks (scikit-learn's ``check_estimator`` for celltwin) fit and predict on small
    generated data (seconds): ``__init__`` only stores parameters, ``fit`` returns the model,
    reads training cells only and refuses unknown fit parameters, predictions are canonical
    (genes, dtype, obs, ``uns``) and reproducible, unseen conditions are predicted or refused
    as declared, and save/load round-trips exactly while damaged directories fail clearly.

    Parameters
    ----------
    model_or_cls
        An unfitted model (its parameters are used; it is not changed) or a model class
        (created with its default parameters).
    handles_unseen
        Unseen conditions the model predicts (see :func:`checks_of`).

    Raises
    ------
    AssertionError
        The first check that fails, with what it expected (an unexpected error of the model
        is reported as the failure of the check that ran into it).

    Examples
    --------
    >>> from celltwin.models import MeanBaseline
    >>> check_model(MeanBaseline())  # doctest: +SKIP
    """
    model = _instance(model_or_cls)
    for check in checks_of(model, handles_unseen=handles_unseen):
        try:
            check(model)
        except AssertionError as err:
            raise AssertionError(f"{check.__name__} failed for {model!r}: {err}") from err
        except Exception as err:  # an error the contract does not allow is a failure too
            raise AssertionError(
                f"{check.__name__} failed for {model!r}: {type(err).__name__}: {err}"
            ) from err


def parametrize_with_checks(models: Iterable[Model | type[Model] | Any]) -> Any:
    """A pytest parametrisation over (model, check) pairs, as scikit-learn's.

    Use it as a decorator; each case is one check of one model, with an id naming both::

        @parametrize_with_checks([MyModel(), get_model("mean")])
        def test_my_models(model, check):
            check(model)

    A ``pytest.param(model, marks=...)`` entry passes its marks (e.g. a skip) to each of its
    checks. A registered model whose pip extra is missing is skipped, saying what to install.
    """
    import pytest  # only where the tests run

    cases = []
    for entry in models:
        marks: tuple[Any, ...] = ()
        if isinstance(entry, type(pytest.param(None))):  # a pytest.param(model, marks=...)
            param: Any = entry
            entry, marks = param.values[0], tuple(param.marks)
        model = _instance(entry)
        spec = MODELS.get(model.name)
        if spec is not None and spec.cls is type(model) and not spec.installed:
            reason = f"{model.name} needs {spec.missing_modules()} ({spec.install_hint})"
            marks = (*marks, pytest.mark.skip(reason=reason))
        for check in checks_of(model):
            label = getattr(type(model), "name", type(model).__name__)
            cases.append(pytest.param(model, check, marks=marks, id=f"{label}-{check.__name__}"))
    return pytest.mark.parametrize(("model", "check"), cases)
