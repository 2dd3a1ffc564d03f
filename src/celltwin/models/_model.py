"""The contract every celltwin model follows, whatever it predicts (after scikit-learn).

``Model(**params)``
    Only stores the parameters (no validation, no data); :meth:`Model.get_params` returns them
    and ``repr`` shows them.
``model.fit(data, ...)``
    Validates the data, learns, sets learned attributes whose names end in ``_`` and returns
    the model.
``model.predict(...)``
    Checks the model is fitted and returns a canonical AnnData of predictions.
``model.save(dir)`` / ``Model.load(dir)``
    JSON + safetensors through one persistence module (:mod:`celltwin.models._persist`).

Three kinds share it, named by the class attribute ``predicts``: ``"cells"`` and
``"pseudobulk"`` (:class:`~celltwin.models.CellModel`, from control cells) and
``"signatures"`` (:class:`~celltwin.models.SignatureModel`, gene-score rows).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
from anndata import AnnData

from ._errors import ModelFormatError, NotFittedError
from ._params import fit_param_names, init_param_names
from ._persist import read_model, write_model

#: What a model predicts: cells, one mean profile per condition, or gene-score signatures.
PredictionKind = Literal["cells", "pseudobulk", "signatures"]


class Model(ABC):
    """Base class of every celltwin model: parameters, fit, predict, save and load.

    Subclasses set the class attributes ``name`` (the registry name) and ``predicts`` (one of
    ``"cells"``, ``"pseudobulk"``, ``"signatures"``), store their parameters in ``__init__``
    (nothing else) and implement ``fit`` and ``predict`` (cell and signature models get them
    from :class:`~celltwin.models.CellModel` and :class:`~celltwin.models.SignatureModel`).
    Every fitted model has ``genes_``, the training genes (the columns of its predictions).

    Persistence: a model lists its fitted arrays in :meth:`_array_names` (saved in
    safetensors) and its other fitted values in :meth:`_json_names` (saved in JSON); its kind
    records the training data it keeps with :meth:`_fitted_meta` / :meth:`_restore_fitted`.
    """

    name: ClassVar[str]
    predicts: ClassVar[PredictionKind]

    # --- parameters -------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters (what ``__init__`` stored), by name."""
        return {name: getattr(self, name) for name in init_param_names(type(self))}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # --- fit and predict --------------------------------------------------------------------

    @abstractmethod
    def fit(self, *args: Any, **kwargs: Any) -> Self:
        """Learn from training data and return ``self`` (see the subclass of each kind)."""

    @abstractmethod
    def predict(self, *args: Any, **kwargs: Any) -> AnnData:
        """Return the predictions as a canonical AnnData (see the subclass of each kind)."""

    def _check_fit_params(self, given: Mapping[str, Any]) -> None:
        """Refuse, before any work, fit parameters the model's ``_fit`` does not name."""
        accepted = fit_param_names(type(self))
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            takes = f"takes {accepted}" if accepted else "takes none"
            raise TypeError(
                f"{self.name}.fit got an unexpected fit parameter {unknown[0]!r} (the model "
                f"{takes}). Fix: drop it, or pass model settings to the constructor "
                f"(get_model({self.name!r}, ...))."
            )

    def _reset_fitted(self) -> None:
        """Forget everything learned (attributes ending in ``_``), before a new fit."""
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
            delattr(self, attr)

    def _check_fitted(self) -> None:
        if not hasattr(self, "genes_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet. Fix: call .fit(...) first, or "
                "load a saved model with celltwin.models.load(dir)."
            )

    # --- persistence --------------------------------------------------------------------------

    def _array_names(self) -> tuple[str, ...]:
        """Fitted array attributes written to the safetensors file."""
        return ()

    def _json_names(self) -> tuple[str, ...]:
        """Fitted non-array attributes (JSON values) written to ``model.json``."""
        return ()

    @abstractmethod
    def _fitted_meta(self) -> dict[str, Any]:
        """The training data this kind of model records in ``model.json`` (JSON values)."""

    @abstractmethod
    def _restore_fitted(self, meta: dict[str, Any]) -> None:
        """Set what :meth:`_fitted_meta` wrote; raise :class:`ModelFormatError` when invalid."""

    def _check_state(self) -> None:
        """Check loaded arrays against each other; raise :class:`ModelFormatError` if not."""
        for name in self._array_names():
            if not isinstance(getattr(self, name, None), np.ndarray):
                raise ModelFormatError(f"{self.name}: fitted array {name!r} is missing.")

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the fitted model to the directory ``path`` (created if needed).

        Arrays go to ``weights.safetensors``, everything else to ``model.json`` (model name,
        parameters, format version, what the model keeps of its training data, celltwin
        version and the SHA-256 of the weights file and of the metadata). Nothing is pickled.

        An existing non-empty ``path`` (e.g. another model) is refused with
        :class:`FileExistsError` and nothing is written, unless ``overwrite=True``: then the
        model's files there are replaced.
        """
        write_model(self, Path(path), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a model written by :meth:`save`; fails clearly on a damaged directory.

        Called on :class:`Model` any saved model whose class is imported loads; called on a
        subclass, the saved model must be of that class (or one of its subclasses).
        :func:`celltwin.models.load` loads any registered model.
        """
        return read_model(path, lambda name: _subclass_named(cls, name, path))


def _subclass_named(cls: type[Model], name: str, path: str | os.PathLike[str]) -> type[Any]:
    """``cls`` or its (indirect) subclass whose registry ``name`` is ``name``."""
    todo: list[type[Model]] = [cls]
    while todo:
        candidate = todo.pop()
        if getattr(candidate, "name", None) == name and not getattr(
            candidate, "__abstractmethods__", None
        ):
            return candidate
        todo.extend(candidate.__subclasses__())
    raise ModelFormatError(
        f"{path} holds a {name!r} model, not a {cls.__name__!r}. Fix: use "
        "celltwin.models.load(path), which returns whichever registered model it holds."
    )


def expect_shape(model: Model, attr: str, shape: tuple[int, ...]) -> None:
    """Raise :class:`ModelFormatError` when a loaded array has the wrong shape."""
    got = tuple(getattr(model, attr).shape)
    if got != shape:
        raise ModelFormatError(
            f"shape mismatch in saved {model.name!r} model: {attr.rstrip('_')!r} has shape {got}, "
            f"expected {shape} from model.json (genes, conditions). The directory is damaged or "
            "was edited; save the model again."
        )
