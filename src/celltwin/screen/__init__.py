"""In-silico screens: rank candidates by an objective over their predicted or measured effects.

Objectives (:data:`OBJECTIVES`, :func:`get_objective`): *reverse* / *mimic* a query signature
(:class:`Query`) by the Connectivity Map's weighted connectivity score (:func:`connectivity`),
cosine or Pearson; *move* named genes or a pathway/regulon activity; *specific* effect.
"""

from ._connectivity import connectivity, connectivity_matrix, wtcs
from ._match import mimic, reverse
from ._move import move, specific
from ._objective import Objective, ObjectiveSpec
from ._query import (
    Query,
    query_from_groups,
    query_from_ranks,
    query_from_scores,
    query_from_sets,
    read_query,
)
from ._registry import OBJECTIVES, get_objective, list_objectives

__all__ = [
    "OBJECTIVES",
    "Objective",
    "ObjectiveSpec",
    "Query",
    "connectivity",
    "connectivity_matrix",
    "get_objective",
    "list_objectives",
    "mimic",
    "move",
    "query_from_groups",
    "query_from_ranks",
    "query_from_scores",
    "query_from_sets",
    "read_query",
    "reverse",
    "specific",
    "wtcs",
]
