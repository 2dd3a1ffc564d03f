"""In-silico screens: rank candidates by an objective over their predicted or measured effects.

This part: the ``move_population`` objective and the virtual twin (:func:`virtual_twin`).
"""

from ._objective import Objective, ObjectiveSpec
from ._population import MOVE_POPULATION, POPULATION_NULL, PopulationSpace, move_population

__all__ = [
    "MOVE_POPULATION",
    "POPULATION_NULL",
    "Objective",
    "ObjectiveSpec",
    "PopulationSpace",
    "move_population",
]
