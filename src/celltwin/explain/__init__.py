"""Explanations: which regulators and pathways carry a response (issue 19).

:func:`activity` scores regulator (DoRothEA) and pathway (PROGENy) activity of any effect,
measured or predicted, with decoupler's univariate linear model (or ``mlm``/``viper``), and
:class:`Activity` holds the scores, p-values and what was dropped and why. decoupler is optional:
``pip install 'celltwin[explain]'``.

:func:`sources` says what each prediction leaned on (the training conditions and contexts it
borrowed from, with their weights) and :func:`describe_sources` says it in words.
:func:`activity_agreement` compares the regulator activities of a predicted and a measured
effect; :func:`recovery_auroc` scores how well activities recover each perturbed regulator.
"""

from ._activity import METHODS, NETS, Activity, activity
from ._agreement import activity_agreement, recovery_auroc
from ._sources import describe_sources, explainable_models, sources

__all__ = [
    "METHODS",
    "NETS",
    "Activity",
    "activity",
    "activity_agreement",
    "describe_sources",
    "explainable_models",
    "recovery_auroc",
    "sources",
]
