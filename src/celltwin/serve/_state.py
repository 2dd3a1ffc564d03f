"""The served model: loaded once, searched, validated against and asked under one lock.

Nothing here imports the web framework: the routes in :mod:`._app` only parse, call these
methods and respond. Every input a request names (context, perturbation, dose) is checked here
against what the model knows, and a refusal is an :class:`ApiError` that says what was wrong,
what would be accepted and, for a gene, which symbols were probably meant.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import (
    CONTEXT,
    CONTROL,
    DOSE,
    IN_DOMAIN,
    PERTURBATION,
    PREDICTION_SOURCE,
    join_combination,
    split_combination,
)
from ..models import Model, UnpredictableConditionsError, UnseenConditionError, load
from ..models import predict_effects as model_effects
from ..priors import resolve_genes
from ._activity import ActivityNet, activity_nets

__all__ = ["CONTROLS_FILE", "ApiError", "ServedModel", "effect_rows", "search"]

logger = logging.getLogger(__name__)

#: Control cells read from the model folder when no ``data`` is given (cell models need them).
CONTROLS_FILE = "controls.h5ad"
#: Benchmark results shown by ``GET /model`` when this file lies in the model folder.
BENCHMARK_FILE = "benchmark.json"
#: Feature sources of ``transition`` that are not a prior of gene symbols.
_NOT_PRIORS = frozenset({"", "data", "none", "external"})
#: A dose above this multiple of the largest measured dose is refused as out of range.
DOSE_RANGE_FACTOR = 10.0


class ApiError(Exception):
    """A request the server refuses, with its HTTP status and what would be accepted."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        suggestions: Sequence[str] = (),
        allowed: Sequence[str] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.suggestions = list(suggestions)
        self.allowed = list(allowed)

    def body(self) -> dict[str, Any]:
        """The JSON error body (``ErrorBody`` in the OpenAPI schema)."""
        return {
            "detail": self.detail,
            "field": self.field,
            "suggestions": self.suggestions,
            "allowed": self.allowed,
        }


def search(
    names: Sequence[str], query: str, limit: int, *, upper: Sequence[str] | None = None
) -> list[str]:
    """Names matching ``query`` case-insensitively: prefix matches first, then the others that
    contain it; each group in the order of ``names`` (``upper``: the names upper-cased, when
    the caller keeps them)."""
    q = query.strip().upper()
    if not q:
        return list(names[:limit])
    if upper is None:
        upper = [n.upper() for n in names]
    first = [n for n, u in zip(names, upper, strict=True) if u.startswith(q)]
    if len(first) < limit:
        first += [n for n, u in zip(names, upper, strict=True) if q in u and not u.startswith(q)]
    return first[:limit]


def _finite(value: object) -> float | None:
    """A float, or None for NaN/inf (JSON has no NaN)."""
    x = float(value)  # type: ignore[arg-type]
    return x if math.isfinite(x) else None


def _read_controls(
    model_dir: Path, data: str | os.PathLike[str] | AnnData | None
) -> AnnData | None:
    """Control cells only (from ``data`` or the model folder's ``controls.h5ad``), or None."""
    if isinstance(data, AnnData):
        adata = data
    else:
        path = Path(data) if data is not None else model_dir / CONTROLS_FILE
        if not path.is_file():
            if data is not None:
                raise FileNotFoundError(f"data={str(path)!r} is not a file. Fix: an .h5ad path")
            return None
        import anndata

        adata = anndata.read_h5ad(path)
    is_control = adata.obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    return adata[is_control].copy()


def _read_benchmark(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / BENCHMARK_FILE
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        logger.warning("benchmark results not shown: %s is not JSON (%s)", path, err)
        return None
    return found if isinstance(found, dict) else {"results": found}


@dataclass
class ServedModel:
    """A loaded model and what it can answer (built by :meth:`load`; read-only afterwards)."""

    model: Model
    controls: AnnData | None
    model_dir: Path
    contexts: list[str]
    perturbations: list[str]
    components: list[str]
    features: list[str]
    feature_source: str
    doses: dict[str, float]
    benchmark: dict[str, Any] | None
    nets: dict[str, ActivityNet]
    cache_size: int = 1024
    lock: threading.Lock = field(default_factory=threading.Lock)
    _cache: OrderedDict[tuple[str, str, str], AnnData] = field(default_factory=OrderedDict)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        data: str | os.PathLike[str] | AnnData | None,
        cache_size: int = 1024,
    ) -> ServedModel:
        """Load a saved model (JSON + safetensors, no code runs) and its control cells;
        ``cache_size`` single-condition predictions are kept (they are deterministic)."""
        folder = Path(model_dir)
        model = load(folder)
        controls = _read_controls(folder, data)
        conditions = getattr(model, "conditions_", None)
        trained = pd.DataFrame(columns=[CONTEXT, PERTURBATION, DOSE])
        if isinstance(conditions, pd.DataFrame):
            trained = conditions.astype({PERTURBATION: str})
        contexts = set(map(str, getattr(model, "contexts_", [])))
        if controls is not None:
            contexts |= set(controls.obs[CONTEXT].astype(str))
        perturbations = sorted(set(trained[PERTURBATION]) - {CONTROL})
        components = sorted({c for p in perturbations for c in split_combination(p)})
        doses = _measured_doses(trained)
        source = str(getattr(model, "feature_source_", ""))
        features = [str(f) for f in getattr(model, "feature_names_", [])]
        genes = [str(g) for g in getattr(model, "genes_", [])]
        served = cls(
            model, controls, folder, sorted(contexts), perturbations, components, features,
            source, doses, _read_benchmark(folder), activity_nets(genes), cache_size,
        )  # fmt: skip
        served._warm_up()
        return served

    def _warm_up(self) -> None:
        """One prediction at start-up: a model that cannot answer fails now, not per request."""
        if not self.contexts or not self.perturbations:
            return
        try:
            self.effects(self.contexts[0], self.perturbations[0], "")
        except TypeError as err:
            raise ValueError(
                f"{self.model.name} predicts from control cells and none were found ({err}). "
                f"Fix: pass data=FILE.h5ad with control cells, or save them as "
                f"{CONTROLS_FILE} in the model folder"
            ) from None
        except ApiError:
            pass  # e.g. a condition the model refuses; requests will say why

    @property
    def genes(self) -> list[str]:
        """The genes the model predicts (its readout)."""
        return [str(g) for g in getattr(self.model, "genes_", [])]

    @property
    def represents_prior_genes(self) -> bool:
        """Whether any gene symbol of a prior can be predicted, measured or not."""
        return self.feature_source not in _NOT_PRIORS and bool(self.features)

    def universe(self) -> list[str]:
        """Every single perturbation the model can be asked about: trained ones first."""
        return list(self._universe)

    @cached_property
    def _universe(self) -> tuple[str, ...]:
        known = set(self.components)
        return (*self.components, *(f for f in self.features if f not in known))

    @cached_property
    def _exact(self) -> frozenset[str]:
        return frozenset(self._universe)

    @cached_property
    def _by_upper(self) -> dict[str, str]:
        """Upper-cased name -> name (the first in :meth:`universe` order wins)."""
        out: dict[str, str] = {}
        for name in self._universe:
            out.setdefault(name.upper(), name)
        return out

    def info(self) -> dict[str, Any]:
        """What ``GET /model`` answers."""
        return {
            "name": self.model.name,
            "contexts": self.contexts,
            "perturbations": self.perturbations,
            "n_genes": len(self.genes),
            "n_perturbations": len(self.perturbations),
            "n_representable": len(self.universe()),
            "priors": self.feature_source,
            "represents_prior_genes": self.represents_prior_genes,
            "activity_nets": sorted(self.nets),
            "doses": self.doses,
            "benchmark": self.benchmark,
        }

    # --- validation ------------------------------------------------------------------------

    def check_context(self, context: str) -> str:
        if context in self.contexts:
            return context
        near = [c for c in self.contexts if c.lower() == context.lower()]
        if len(near) == 1:
            return near[0]
        raise ApiError(
            422, f"unknown context {context!r}; the model answers for {len(self.contexts)} "
            "context(s), listed in 'allowed'", field="context", allowed=self.contexts,
        )  # fmt: skip

    def canonical(self, perturbation: str, *, field: str = "perturbation") -> str:
        """The canonical label of ``perturbation`` (components matched ignoring case, pairs
        sorted ``A+B``); an unknown component is refused with the nearest symbols."""
        parts = [p.strip() for p in split_combination(perturbation.strip())]
        if perturbation.strip() == CONTROL:
            return CONTROL
        if not parts or any(not p for p in parts):
            raise ApiError(422, f"{field} {perturbation!r} names no perturbation", field=field)
        found = [p if p in self._exact else self._by_upper.get(p.upper()) for p in parts]
        if all(found):  # the common case, without building resolve_genes' lookup tables
            return join_combination([str(f) for f in found])
        table = resolve_genes(parts, symbols=self._universe)
        unknown = table[table["status"] == "unknown"]
        if len(unknown):
            names = ", ".join(map(repr, unknown["query"]))
            hints = [s for text in unknown["suggestion"] for s in str(text).split(";") if s]
            raise ApiError(
                422, f"unknown {field} {names}: the model can predict neither a trained "
                f"perturbation nor a symbol of its priors ({self.feature_source or 'none'}) "
                f"by that name{'; did you mean ' + ', '.join(hints) + '?' if hints else ''}",
                field=field, suggestions=hints,
            )  # fmt: skip
        return join_combination(list(table["symbol"]))

    def check_dose(self, perturbation: str, dose: float | None) -> str:
        if dose is None:
            return ""
        measured = [self.doses[c] for c in split_combination(perturbation) if c in self.doses]
        top = max(measured) if measured else None
        if top is not None and dose > DOSE_RANGE_FACTOR * top:
            raise ApiError(
                422, f"dose {dose:g} is out of range for {perturbation!r}: at most "
                f"{DOSE_RANGE_FACTOR:g} x its largest measured dose ({top:g})", field="dose",
            )  # fmt: skip
        return f"{dose:g}"

    # --- answers ---------------------------------------------------------------------------

    def effects(self, context: str, perturbation: str, dose: str) -> AnnData:
        """One condition's predicted effects, asked under the model lock.

        Predictions are deterministic (seed 0), so the last ``cache_size`` conditions asked
        are kept and answered again without the model (least recently used forgotten first).
        """
        key = (context, perturbation, dose)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        found = self.effects_of([key])
        with self._cache_lock:
            self._cache[key] = found
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return found

    def effects_of(self, conditions: Sequence[tuple[str, str, str]]) -> AnnData:
        """Predicted effects of several conditions (one model call, under the lock).

        ``TransitionModel.predict_effects`` sets torch's global thread count around its work
        and the models were not written for concurrent calls, so calls are serialised.
        """
        try:
            with self.lock:
                return model_effects(self.model, self.controls, conditions=list(conditions))
        except UnpredictableConditionsError as err:
            hints = [str(s) for s in err.refusals.get("suggestion", []) if str(s)]
            raise ApiError(422, str(err), field="perturbation", suggestions=hints) from None
        except UnseenConditionError as err:
            raise ApiError(422, str(err), field="perturbation") from None
        except (ValueError, KeyError) as err:
            raise ApiError(422, str(err)) from None

    def activities(self, effect: np.ndarray, top: int) -> dict[str, list[dict[str, Any]]]:
        """``{net: [{name, score}]}`` strongest first (ulm t-values, :mod:`._activity`)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for name, net in self.nets.items():
            scores = net.scores(effect)[0]
            order = np.argsort(-np.abs(scores), kind="stable")[:top]
            out[name] = [{"name": net.sources[i], "score": float(scores[i])} for i in order]
        return out


def _measured_doses(trained: pd.DataFrame) -> dict[str, float]:
    """The largest measured dose of each perturbation component with numeric doses."""
    if DOSE not in trained or trained.empty:
        return {}
    dose = pd.to_numeric(trained[DOSE].astype(str), errors="coerce")
    out: dict[str, float] = {}
    for perturbation, value in zip(trained[PERTURBATION], dose, strict=True):
        if np.isfinite(value):
            for c in split_combination(str(perturbation)):
                out[c] = max(out.get(c, 0.0), float(value))
    return out


def effect_rows(effects: AnnData, top: int) -> dict[str, Any]:
    """The first row of an effects table as lists (NaN -> None) and its ``top`` genes."""
    x = np.asarray(effects.X[0], dtype=np.float64).ravel()
    lower = np.asarray(effects.layers["lower"][0], dtype=np.float64).ravel()
    upper = np.asarray(effects.layers["upper"][0], dtype=np.float64).ravel()
    genes = [str(g) for g in effects.var_names]
    order = np.argsort(-np.abs(np.nan_to_num(x)), kind="stable")[:top]
    obs = effects.obs.iloc[0]
    return {
        "source": str(obs.get(PREDICTION_SOURCE, "")),
        "in_domain": _finite(obs.get(IN_DOMAIN, np.nan)),
        "genes": genes,
        "effect": [_finite(v) for v in x],
        "lower": [_finite(v) for v in lower],
        "upper": [_finite(v) for v in upper],
        "top_genes": [
            {
                "gene": genes[i],
                "effect": _finite(x[i]),
                "lower": _finite(lower[i]),
                "upper": _finite(upper[i]),
            }
            for i in order
        ],
    }
