"""In-silico screens: rank candidate perturbations by what their predicted effects would do.

A screen asks a fitted model about many candidates in one context, scores each predicted (or
measured) effect with an objective, and returns one ranked table that says how far to trust
each row (the score's interval, the in-domain score, where the prediction came from)::

    from celltwin import models, screen

    model = models.load("model/")
    result = screen.screen(
        model, controls, context="THP-1",
        candidates=screen.representable(model),
        objective=screen.get_objective("move", down=["STAT1"]),
    )
    result.table.head()                      # rank, label, score, lower, upper, fdr, ...
    result.write("screen_out/")

Candidates (:class:`Candidates`): :func:`genes`, :func:`representable`, :func:`pairs`,
:func:`pairs_of_top`, :func:`drugs` (a SMILES library x a dose grid), :func:`measured`
(profiles screened beside the predictions), :func:`cmap` (the Connectivity Map rank profiles),
:func:`concat`. Results: :class:`ScreenResult`, :func:`read_screen`.

Objectives (:data:`OBJECTIVES`, :func:`get_objective`): *reverse* / *mimic* a query signature
(:class:`Query`) by the Connectivity Map's weighted connectivity score (:func:`connectivity`),
cosine or Pearson; *move* named genes or a pathway/regulon activity; *specific* effect;
*move a population* (:func:`move_population`, registered as :data:`MOVE_POPULATION`).

Virtual twin (:func:`virtual_twin`): a sample's cells become a context of their own, and
perturbations are ranked by how far they move the sample toward a reference population.

Combinations (:func:`interactions`, :func:`observed_interactions`, :func:`compare_interactions`):
each pair against its additive expectation, with Norman et al. 2019's measures and the GEARS
classes, ranked from the most interacting. Dose-response (:func:`dose_response`,
:func:`fit_hill`): a drug over a dose grid, a Hill fit per gene and pathway score, with intervals.
"""

from ._candidates import Candidates, concat, drugs, genes, pairs, pairs_of_top, representable
from ._combinations import (
    ADDITIVE_TOLERANCE,
    INTERACTION_COLUMNS,
    compare_interactions,
    interactions,
    observed_interactions,
)
from ._connectivity import connectivity, connectivity_matrix, wtcs
from ._dose import HILL_COLUMNS, DoseResponseResult, dose_response, fit_hill, hill
from ._engine import screen
from ._match import mimic, reverse
from ._move import move, specific
from ._objective import Objective, ObjectiveSpec
from ._population import MOVE_POPULATION, POPULATION_NULL, PopulationSpace, move_population
from ._profiles import cmap, measured
from ._query import (
    Query,
    query_from_groups,
    query_from_ranks,
    query_from_scores,
    query_from_sets,
    read_query,
)
from ._registry import OBJECTIVES, get_objective, list_objectives
from ._result import ScreenResult, read_screen
from ._twin import POPULATION, TwinResult, virtual_twin

__all__ = [
    "ADDITIVE_TOLERANCE",
    "HILL_COLUMNS",
    "INTERACTION_COLUMNS",
    "MOVE_POPULATION",
    "OBJECTIVES",
    "POPULATION",
    "POPULATION_NULL",
    "Candidates",
    "DoseResponseResult",
    "Objective",
    "ObjectiveSpec",
    "PopulationSpace",
    "Query",
    "ScreenResult",
    "TwinResult",
    "cmap",
    "compare_interactions",
    "concat",
    "connectivity",
    "connectivity_matrix",
    "dose_response",
    "drugs",
    "fit_hill",
    "genes",
    "get_objective",
    "hill",
    "interactions",
    "list_objectives",
    "measured",
    "mimic",
    "move",
    "move_population",
    "observed_interactions",
    "pairs",
    "pairs_of_top",
    "query_from_groups",
    "query_from_ranks",
    "query_from_scores",
    "query_from_sets",
    "read_query",
    "read_screen",
    "representable",
    "reverse",
    "screen",
    "specific",
    "virtual_twin",
    "wtcs",
]
