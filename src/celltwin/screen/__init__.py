"""In-silico screens: rank candidates by an objective over their predicted or measured effects.

This part: the ``move_population`` objective (:func:`move_population`) and the virtual twin
(:func:`virtual_twin`), which ranks perturbations by how far they move a sample's cells toward
a reference population.
"""

from ._objective import Objective, ObjectiveSpec
from ._population import MOVE_POPULATION, POPULATION_NULL, PopulationSpace, move_population
from ._twin import POPULATION, TABLE_COLUMNS, TwinResult, virtual_twin

__all__ = [
    "MOVE_POPULATION",
    "POPULATION",
    "POPULATION_NULL",
    "TABLE_COLUMNS",
    "Objective",
    "ObjectiveSpec",
    "PopulationSpace",
    "TwinResult",
    "move_population",
    "virtual_twin",
]
