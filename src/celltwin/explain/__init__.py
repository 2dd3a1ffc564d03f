"""Explanations: which regulators and pathways carry a response (issue 19).

For now: :func:`activity` scores regulator (DoRothEA) and pathway (PROGENy) activity of any effect,
measured or predicted, with decoupler's univariate linear model (or ``mlm``/``viper``), and
:class:`Activity` holds the scores, p-values and what was dropped and why. decoupler is optional:
``pip install 'celltwin[explain]'``.
"""

from ._activity import METHODS, NETS, Activity, activity
from ._causal import CausalMap, causal_map, correlation_map
from ._enrich import GENE_SET_COLLECTIONS, Enrichment, enrichment
from ._paths import PATH_COLUMNS, PRIOR_NETWORKS, prior_network, regulatory_paths
from ._score_map import score_map

__all__ = [
    "GENE_SET_COLLECTIONS",
    "METHODS",
    "NETS",
    "PATH_COLUMNS",
    "PRIOR_NETWORKS",
    "Activity",
    "CausalMap",
    "Enrichment",
    "activity",
    "causal_map",
    "correlation_map",
    "enrichment",
    "prior_network",
    "regulatory_paths",
    "score_map",
]
