"""Explanations: which regulators and pathways carry a response, and why a prediction says so (issue 19).

- :func:`activity`: regulator (DoRothEA) and pathway (PROGENy) activity of any effect, measured
  or predicted, with decoupler's univariate linear model (or ``mlm``/``viper``).
- :func:`enrichment`: over-representation of the up and down genes (hypergeometric, BH) and a
  ranked-list test (decoupler's GSEA) against Hallmark/GO/KEGG or the user's sets.
- :func:`regulatory_paths`: shortest sign-agreeing paths in DoRothEA/STRING from the perturbed
  target to the most affected genes (:func:`prior_network` builds the graph).
- :func:`causal_map`: a directed target -> gene network measured by a screen with the DE engine,
  :func:`correlation_map` its observational alternative, :func:`score_map` against a known net,
  :func:`precision_recall` its ranked edges' curve and average precision (threshold-free).
- :func:`sources`: what each prediction leaned on (the training conditions and contexts it
  borrowed from, with their weights); :func:`describe_sources` says it in words.
- :func:`activity_agreement` compares the regulator activities of a predicted and a measured
  effect; :func:`recovery_auroc` scores how well activities recover each perturbed regulator.
- :func:`explain` / :func:`explain_file`: all of it for an effect table, a prediction or a screen
  (``celltwin explain``; the page is :func:`celltwin.pl.write_explanation`).

decoupler is optional: ``pip install 'celltwin[explain]'``.
"""

from ._activity import METHODS, NETS, Activity, activity
from ._agreement import activity_agreement, recovery_auroc
from ._causal import CausalMap, causal_map, correlation_map
from ._enrich import GENE_SET_COLLECTIONS, Enrichment, enrichment
from ._explain import INPUT_KINDS, Explanation, explain, explain_file
from ._paths import PATH_COLUMNS, PRIOR_NETWORKS, prior_network, regulatory_paths
from ._precision_recall import PrecisionRecall, precision_recall
from ._score_map import score_map
from ._sources import describe_sources, explainable_models, sources

__all__ = [
    "GENE_SET_COLLECTIONS",
    "INPUT_KINDS",
    "METHODS",
    "NETS",
    "PATH_COLUMNS",
    "PRIOR_NETWORKS",
    "Activity",
    "CausalMap",
    "Enrichment",
    "Explanation",
    "PrecisionRecall",
    "activity",
    "activity_agreement",
    "causal_map",
    "correlation_map",
    "describe_sources",
    "enrichment",
    "explain",
    "explain_file",
    "explainable_models",
    "precision_recall",
    "prior_network",
    "recovery_auroc",
    "regulatory_paths",
    "score_map",
    "sources",
]
