"""In-silico screens: rank candidate perturbations by what their predicted effects would do.

A screen asks a fitted model about many candidates in one context, scores each predicted (or
measured) effect with an objective, and returns one ranked table that says how far to trust
each row (the score's interval, the in-domain score, where the prediction came from)::

    from celltwin import models, screen

    model = models.load("model/")
    result = screen.screen(
        model, controls, context="THP-1",
        candidates=screen.representable(model),
        objective=objective,                 # an Objective (reverse, mimic, move, specific)
    )
    result.table.head()                      # rank, label, score, lower, upper, fdr, ...
    result.write("screen_out/")

Candidates (:class:`Candidates`): :func:`genes`, :func:`representable`, :func:`pairs`,
:func:`pairs_of_top`, :func:`drugs` (a SMILES library x a dose grid), :func:`measured`
(profiles screened beside the predictions), :func:`cmap` (the Connectivity Map rank profiles),
:func:`concat`. Results: :class:`ScreenResult`, :func:`read_screen`.
"""

from ._candidates import Candidates, concat, drugs, genes, pairs, pairs_of_top, representable
from ._engine import screen
from ._objective import Objective
from ._profiles import cmap, measured
from ._result import ScreenResult, read_screen

__all__ = [
    "Candidates",
    "Objective",
    "ScreenResult",
    "cmap",
    "concat",
    "drugs",
    "genes",
    "measured",
    "pairs",
    "pairs_of_top",
    "read_screen",
    "representable",
    "screen",
]
