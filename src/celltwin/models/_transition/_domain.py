"""In-domain score of ``transition``'s predictions, and the widening of their intervals.

A prediction is as trustworthy as the condition is close to what the model was trained on.
Each predicted condition gets a score in ``[0, 1]`` from the distance that matters for the
estimate it was built from (:mod:`._features`):

``own``
    Measured in training: 1.
``context``
    The distance, in the latent space, from the context's control mean to the nearest context
    where the treatment was measured.
``dose``
    The distance in ``log10`` dose to the treatment's nearest measured dose in the context.
``features``
    The mean distance of the perturbation's prior-feature vector to its :data:`K_NEAREST`
    nearest training perturbations.
``combination``
    The lowest score of its parts, each scored as the source it is estimated from.

and, when the context is not a training context, the distance of its control mean to the
nearest training context's; the score is the lower of the two.

**Calibration.** A distance becomes a score by comparing it with the same distance of the
training conditions *held out*: leave-one-out, each training perturbation's distance to the
other training perturbations (each context's to the other contexts, each dose's to the drug's
other doses). The score is the share of those held-out conditions at least as far from the
rest as the query is (a conformal p-value, :func:`p_value`). So its scale means the same on
every dataset: 0.5 is a typical held-out training condition, 0.05 is farther than 95% of
them (extrapolation), 1 is measured or as close as any.

**Intervals.** The half-width of a predicted effect's interval is multiplied by
``exp(slope * (1 - score))`` (:func:`widen`), where ``slope >= 0`` is the least-squares
slope of the log of each validation condition's needed interval scale on ``1 - score``
(:func:`calibrate_domain`; 0 with fewer than :data:`MIN_SLOPE_CONDITIONS` of them), and the interval's calibration factor is then refitted on the
widened validation errors, so that the intervals cover the nominal share of held-out
conditions and more of that cover goes to the conditions far from training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from ..._keys import split_combination
from .._conditions import ConditionKey, dose_components
from ._estimate import VIEWS, log_doses
from ._features import Transfer

#: Neighbours averaged in the feature distance.
K_NEAREST: Final = 3
#: Largest slope of the interval widening (a condition at score 0 gets at most this factor).
MAX_WIDENING: Final = 4.0
#: Fewest validation conditions the widening's slope is fitted on (fewer: slope 0). On Kang
#: (5 validation conditions, one held-out cell type per member) a fitted slope lowered the
#: test coverage from 0.901 to 0.879 (``benchmarks/notes/domain.md``).
MIN_SLOPE_CONDITIONS: Final = 10
#: Reference distances held in the fitted state: one list per distance kind.
KINDS: Final = ("context", "dose", "features", "contexts")

#: The distance of each training condition (row) held out, per kind; ``"contexts"`` is keyed
#: by the training context's index.
HeldOut = dict[str, dict[int, float]]


def p_value(distance: float, reference: np.ndarray) -> float:
    """Share of ``reference`` distances at least ``distance`` (conformal, ``(1 + k) / (1 + n)``).

    0 when there is no reference (nothing held out to compare with) and the distance is not 0.
    """
    if distance <= 0:
        return 1.0
    if len(reference) == 0:
        return 0.0
    return float((1 + np.sum(reference >= distance)) / (1 + len(reference)))


def held_out_p_values(distances: Mapping[int, float]) -> dict[int, float]:
    """Each held-out condition's score among the others (leave-one-out p-value)."""
    values = np.array(list(distances.values()), dtype=np.float64)
    return {row: float(np.sum(values >= d) / max(len(values), 1)) for row, d in distances.items()}


def widen(score: np.ndarray | float, slope: float) -> np.ndarray:
    """Factor on an interval's half-width: 1 at score 1, rising as the score falls."""
    return np.exp(float(slope) * (1.0 - np.asarray(score, dtype=np.float64)))


def _features_of(transfer: Transfer) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The distinct training singles (perturbation, dose) with features, and their vectors."""
    if transfer.features is None:
        return [], np.zeros((0, 0))
    names, vectors = [], []
    for _, p, d in transfer.keys:
        if len(split_combination(p)) != 1 or (p, d) in names:
            continue
        v = transfer.features.vector(p, d)
        if v is not None:
            names.append((p, d))
            vectors.append(v)
    return names, (np.vstack(vectors) if vectors else np.zeros((0, 0)))


def _knn(vector: np.ndarray, others: np.ndarray) -> float:
    if len(others) == 0:
        return np.inf
    d = np.sqrt(((others - vector[None, :]) ** 2).sum(axis=1))
    return float(np.sort(d)[: min(K_NEAREST, len(d))].mean())


class DomainScorer:
    """Distances of conditions to the training data of a fitted classical estimate.

    Parameters
    ----------
    transfer
        The classical estimates from every training condition (its keys, contexts' latent
        means, features).
    contexts
        The training contexts.
    """

    def __init__(self, transfer: Transfer, contexts: Sequence[str]) -> None:
        self.transfer = transfer
        self.contexts = list(contexts)
        self.single_names, self.single_vectors = _features_of(transfer)
        self._feature_distances: dict[tuple[ConditionKey, bool], float] = {}

    # --- distances of a query -----------------------------------------------------------

    def context_distance(self, key: ConditionKey, latent: np.ndarray) -> float:
        """From ``key``'s context to the nearest other context that measured its treatment."""
        c, p, d = key
        rows = self.transfer.by_treatment.get((p, d), [])
        sources = {self.transfer.keys[i][0] for i in rows} - {c}
        if not sources:
            return np.inf
        return min(_distance(latent, self.transfer.context_latent[s]) for s in sources)

    def dose_distance(self, key: ConditionKey) -> float:
        """In ``log10`` dose, from ``key`` to the treatment's nearest other measured dose."""
        c, p, d = key
        rows = [i for i in self.transfer.by_drug.get((c, p), []) if self.transfer.keys[i][2] != d]
        if not rows:
            return np.inf
        target = log_doses(p, d)
        keys = self.transfer.keys
        return min(float(np.abs(log_doses(p, keys[i][2]) - target).sum()) for i in rows)

    def feature_distance(self, key: ConditionKey, *, leave_out: bool = False) -> float:
        """Mean distance of ``key``'s feature vector to its nearest training singles
        (``leave_out``: without the singles of the same perturbation); computed once per
        key (a screen of pairs asks for each part hundreds of times)."""
        if (key, leave_out) not in self._feature_distances:
            self._feature_distances[key, leave_out] = self._feature_distance(key, leave_out)
        return self._feature_distances[key, leave_out]

    def _feature_distance(self, key: ConditionKey, leave_out: bool) -> float:
        features = self.transfer.features
        v = None if features is None else features.vector(key[1], key[2])
        if v is None:
            return np.inf
        keep = [i for i, (p, _) in enumerate(self.single_names) if not leave_out or p != key[1]]
        return _knn(v, self.single_vectors[keep]) if keep else np.inf

    def new_context_distance(self, latent: np.ndarray, *, exclude: str | None = None) -> float:
        """From a context's latent mean to the nearest training context (but ``exclude``)."""
        others = [c for c in self.contexts if c != exclude]
        if not others:
            return np.inf
        return min(_distance(latent, self.transfer.context_latent[c]) for c in others)

    # --- held out ---------------------------------------------------------------------------

    def held_out(self) -> HeldOut:
        """Each training condition's distances as if it had been held out, per kind."""
        out: HeldOut = {kind: {} for kind in KINDS}
        for i, key in enumerate(self.transfer.keys):
            latent = self.transfer.context_latent[key[0]]
            for kind, dist in (
                ("context", self.context_distance(key, latent)),
                ("dose", self.dose_distance(key)),
                ("features", self.feature_distance(key, leave_out=True)),
            ):
                if np.isfinite(dist):
                    out[kind][i] = dist
        for j, c in enumerate(self.contexts):
            dist = self.new_context_distance(self.transfer.context_latent[c], exclude=c)
            if np.isfinite(dist):
                out["contexts"][j] = dist
        return out

    # --- scores -----------------------------------------------------------------------------

    def score(
        self,
        key: ConditionKey,
        source: str | None,
        latent: np.ndarray,
        reference: Mapping[str, np.ndarray],
    ) -> float:
        """The in-domain score of ``key`` predicted from ``source`` (``None``: control)."""
        context = 1.0
        if key[0] not in self.contexts:
            context = p_value(self.new_context_distance(latent), reference["contexts"])
        if source is None or source == "own":
            return context
        return min(context, self._perturbation_score(key, source, latent, reference))

    def _perturbation_score(
        self,
        key: ConditionKey,
        source: str,
        latent: np.ndarray,
        reference: Mapping[str, np.ndarray],
    ) -> float:
        if source == "context":
            return p_value(self.context_distance(key, latent), reference["context"])
        if source == "dose":
            return p_value(self.dose_distance(key), reference["dose"])
        if source == "features":
            return p_value(self.feature_distance(key), reference["features"])
        c, p, d = key
        parts = zip(split_combination(p), dose_components(p, d), strict=True)
        return min(
            (self._part_score((c, part, pd_), latent, reference) for part, pd_ in parts),
            default=1.0,
        )

    def _part_score(
        self, key: ConditionKey, latent: np.ndarray, reference: Mapping[str, np.ndarray]
    ) -> float:
        """A part of a combination, scored as :meth:`Transfer.single` estimates it."""
        if self.transfer.own(key) is not None:
            return 1.0
        if np.isfinite(self.context_distance(key, latent)):
            return self._perturbation_score(key, "context", latent, reference)
        return self._perturbation_score(key, "features", latent, reference)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.sum((np.asarray(a) - np.asarray(b)) ** 2)))


# --- fitted state ---------------------------------------------------------------------------


def domain_state(held_out: HeldOut, slope: float = 0.0) -> dict[str, Any]:
    """The JSON-safe fitted state: sorted held-out distances per kind, and the slope."""
    return {
        "distances": {k: sorted(float(v) for v in held_out[k].values()) for k in KINDS},
        "slope": float(slope),
    }


def references(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The held-out distances of a fitted state, as arrays."""
    return {k: np.asarray(state["distances"][k], dtype=np.float64) for k in KINDS}


def check_domain_state(state: Any) -> None:
    """Raise ``ValueError`` when a loaded state is not one :func:`domain_state` writes."""
    if not isinstance(state, dict) or set(state) != {"distances", "slope"}:
        raise ValueError("domain_ must hold 'distances' and 'slope'")
    distances = state["distances"]
    if not isinstance(distances, dict) or set(distances) != set(KINDS):
        raise ValueError(f"domain_['distances'] must hold {list(KINDS)}")
    for values in distances.values():
        if not isinstance(values, list) or not all(isinstance(v, float) for v in values):
            raise ValueError("domain_ distances must be lists of numbers")
    if not isinstance(state["slope"], float) or not 0 <= state["slope"] <= np.log(MAX_WIDENING):
        raise ValueError("domain_['slope'] must be a number in [0, log(4)]")


# --- calibration ---------------------------------------------------------------------------


def validation_score(
    scorer: DomainScorer, held_out: HeldOut, row: int, view: str, reference: Mapping[str, Any]
) -> float:
    """The score of training condition ``row`` held out and estimated from ``view``."""
    if view in held_out and row in held_out[view]:
        return held_out_p_values(held_out[view])[row]
    key = scorer.transfer.keys[row]
    return scorer.score(key, view, scorer.transfer.context_latent[key[0]], reference)


def fit_slope(scores: np.ndarray, needed: np.ndarray) -> float:
    """Least-squares slope of ``log(needed)`` on ``1 - scores``, clipped to
    ``[0, log(MAX_WIDENING)]`` (0 with fewer than :data:`MIN_SLOPE_CONDITIONS` conditions or
    no spread of scores)."""
    x = 1.0 - np.asarray(scores, dtype=np.float64)
    y = np.log(np.maximum(np.asarray(needed, dtype=np.float64), 1e-12))
    if len(x) < MIN_SLOPE_CONDITIONS or float(np.var(x)) < 1e-9:
        return 0.0
    slope = float(np.cov(x, y, bias=True)[0, 1] / np.var(x))
    return float(np.clip(slope, 0.0, np.log(MAX_WIDENING)))


def calibrate_domain(
    errors: Sequence[tuple[str, np.ndarray]],
    scores: Sequence[float],
    error_var: np.ndarray,
    interval: float,
) -> tuple[float, float]:
    """``(q, slope)``: the widening's slope from the validation conditions' needed scales,
    then ``q`` so that ``|error| <= q widen(score) sqrt(v_g)`` for a share ``interval`` of
    the validation errors."""
    ratios = [np.abs(err) / np.sqrt(error_var[VIEWS.index(v)]) for v, err in errors]
    needed = np.array([np.quantile(r, interval) for r in ratios])
    slope = fit_slope(np.asarray(scores), needed)
    factors = widen(np.asarray(scores), slope)
    scaled = np.concatenate([r / f for r, f in zip(ratios, factors, strict=True)])
    return float(np.quantile(scaled, interval)), slope
