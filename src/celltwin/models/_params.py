"""Parameter introspection, written once: what a model's ``__init__`` and ``_fit`` accept."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def _named(function: Callable[..., Any], *, skip: int) -> list[str]:
    """Names of ``function``'s parameters after the first ``skip``, without ``*args``/``**kw``."""
    parameters = list(inspect.signature(function).parameters.values())[skip:]
    return [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def init_param_names(cls: type) -> list[str]:
    """Constructor parameters of ``cls`` (``__init__``'s named parameters, ``self`` excluded).

    Examples
    --------
    >>> class Toy:
    ...     def __init__(self, alpha=1.0, *, seed=0): ...
    >>> init_param_names(Toy)
    ['alpha', 'seed']
    """
    return _named(cls.__init__, skip=1)  # type: ignore[misc]  # unbound __init__ of a class


def fit_param_names(cls: type) -> list[str]:
    """Fit parameters of a model class: the keyword parameters its ``_fit`` names after the data.

    ``_fit(self, train, **fit_params)`` overrides keep ``**fit_params`` only to match the base
    class; the parameters a model takes are the ones it names (e.g. ``perturbation_features``).
    """
    fit = getattr(cls, "_fit", None)
    return _named(fit, skip=2) if fit is not None else []


def fit_arguments(cls: type) -> list[str]:
    """Keyword arguments ``cls.fit`` takes: those ``fit`` names after the data, then its
    fit parameters (:func:`fit_param_names`)."""
    names = _named(cls.fit, skip=2) if hasattr(cls, "fit") else []
    return names + [n for n in fit_param_names(cls) if n not in names]
