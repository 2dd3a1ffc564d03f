"""The objective registry: builders as data, with their direction and null.

:data:`OBJECTIVES` maps a name to an :class:`ObjectiveSpec`; :func:`get_objective` builds one by
name with checked parameters. Another module registers an objective by adding its spec here.
"""

from __future__ import annotations

import inspect
from typing import Any

from ._match import NULL as CONNECTIVITY_NULL
from ._match import mimic, reverse
from ._move import MOVE_NULL, SPECIFIC_NULL, move, specific
from ._objective import Objective, ObjectiveSpec
from ._population import MOVE_POPULATION
from ._suggest import did_you_mean

#: Registered objectives by name.
OBJECTIVES: dict[str, ObjectiveSpec] = {
    spec.name: spec
    for spec in (
        ObjectiveSpec(
            "reverse", reverse, "lower", CONNECTIVITY_NULL,
            "reverse a query signature (CMap weighted connectivity, or cosine/Pearson)",
        ),
        ObjectiveSpec(
            "mimic", mimic, "higher", CONNECTIVITY_NULL,
            "mimic a query signature (CMap weighted connectivity, or cosine/Pearson)",
        ),
        ObjectiveSpec(
            "move", move, "higher", MOVE_NULL,
            "move named genes or a pathway/regulon activity, penalising off-target change",
        ),
        ObjectiveSpec(
            "specific", specific, "higher", SPECIFIC_NULL,
            "the largest predicted change relative to its uncertainty",
        ),
        MOVE_POPULATION,
    )
}  # fmt: skip


def list_objectives() -> list[str]:
    """Names of the registered objectives."""
    return sorted(OBJECTIVES)


def get_objective(name: str, **params: Any) -> Objective:
    """Build the registered objective ``name`` with ``params``.

    Unknown names and parameters raise a ValueError naming the choices (with a did-you-mean).

    Examples
    --------
    >>> get_objective("move", up=["STAT1"], penalty=0.5).direction
    'higher'
    """
    if name not in OBJECTIVES:
        raise ValueError(
            f"unknown objective {name!r}{did_you_mean(name, OBJECTIVES)}; choose one of "
            f"{list_objectives()}"
        )
    spec = OBJECTIVES[name]
    sig = inspect.signature(spec.build)
    accepted = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    names = [p.name for p in accepted]
    for key in params:
        if key not in names:
            raise ValueError(
                f"objective {name!r} takes no parameter {key!r}{did_you_mean(key, names)}; "
                f"its parameters: {names}"
            )
    missing = [p.name for p in accepted if p.default is p.empty and p.name not in params]
    if missing:
        raise ValueError(f"objective {name!r} needs parameter(s) {missing}")
    objective = spec.build(**params)
    if objective.direction != spec.direction:  # a registry entry that lies is a bug
        raise RuntimeError(f"objective {name!r} built with direction {objective.direction!r}")
    return objective
