"""Explanations: which regulators and pathways carry a response (issue 19).

For now: :func:`activity` scores regulator (DoRothEA) and pathway (PROGENy) activity of any effect,
measured or predicted, with decoupler's univariate linear model (or ``mlm``/``viper``), and
:class:`Activity` holds the scores, p-values and what was dropped and why. decoupler is optional:
``pip install 'celltwin[explain]'``.
"""

from ._activity import METHODS, NETS, Activity, activity

__all__ = ["METHODS", "NETS", "Activity", "activity"]
