"""Honest evaluation: the field's metrics, a fast DE engine, noise ceilings and statistics.

Metric functions are pure functions over arrays (:mod:`celltwin.eval._metrics`); the registry
(:data:`METRICS`) says for each its direction, level and inputs, so comparing a model with a
baseline or a ceiling is mechanical. The DE engine (:func:`rank_sum_test`) is the Wilcoxon rank-sum
test of cell-eval/pdex, exact to scipy, with ranks of each gene's values computed once per control.
"""

from ._ceiling import Ceiling, spearman_brown, split_half_ceiling, split_halves
from ._de import (
    DEResult,
    benjamini_hochberg,
    log2_fold_change,
    rank_sum_test,
    top_de_genes,
)
from ._de_stream import differential_expression
from ._de_welch import welch_t_test
from ._evaluate import DEFAULT_METRICS, evaluate
from ._export import to_vcc, write_vcc
from ._files import evaluate_files
from ._inputs import (
    CELL_KINDS,
    INPUT_KINDS,
    NEEDS_PRED_CELLS,
    MetricInputs,
    build_inputs,
    group_means,
    target_gene_mask,
)
from ._metrics import (
    centroid_accuracy,
    des,
    mae,
    mse,
    mse_top_de,
    n_sig_spearman,
    pds,
    pearson_delta,
    pearson_delta_top_de,
    spearman,
    systema_pearson_delta,
    topk_auroc,
    topk_overlap,
)
from ._metrics_cells import PCABasis, energy_distance, fit_pca, mmd
from ._metrics_interaction import (
    GI_CLASSES,
    interaction_class,
    interaction_fit,
    interaction_pearson,
    interval_coverage,
)
from ._metrics_r2 import r2_mean, r2_mean_top_de
from ._registry import (
    METRICS,
    SCGEN_METRICS,
    VCC_METRICS,
    Metric,
    compute_metrics,
    get_metric,
    list_metrics,
)
from ._result import Evaluation
from ._scores import baseline_scaled, mean_of_centroids, vcc_score
from ._stats import PairedComparison, Summary, bootstrap_ci, paired_comparison, summarize
from ._verdict import (
    HEADLINE_METRICS,
    MIN_CI_UNITS,
    Verdict,
    outcome,
    verdict,
    verdict_frame,
)

__all__ = [
    "CELL_KINDS",
    "DEFAULT_METRICS",
    "GI_CLASSES",
    "HEADLINE_METRICS",
    "INPUT_KINDS",
    "METRICS",
    "MIN_CI_UNITS",
    "NEEDS_PRED_CELLS",
    "SCGEN_METRICS",
    "VCC_METRICS",
    "Ceiling",
    "DEResult",
    "Evaluation",
    "Metric",
    "MetricInputs",
    "PCABasis",
    "PairedComparison",
    "Summary",
    "Verdict",
    "baseline_scaled",
    "benjamini_hochberg",
    "bootstrap_ci",
    "build_inputs",
    "centroid_accuracy",
    "compute_metrics",
    "des",
    "differential_expression",
    "energy_distance",
    "evaluate",
    "evaluate_files",
    "fit_pca",
    "get_metric",
    "group_means",
    "interaction_class",
    "interaction_fit",
    "interaction_pearson",
    "interval_coverage",
    "list_metrics",
    "log2_fold_change",
    "mae",
    "mean_of_centroids",
    "mmd",
    "mse",
    "mse_top_de",
    "n_sig_spearman",
    "outcome",
    "paired_comparison",
    "pds",
    "pearson_delta",
    "pearson_delta_top_de",
    "r2_mean",
    "r2_mean_top_de",
    "rank_sum_test",
    "spearman",
    "spearman_brown",
    "split_half_ceiling",
    "split_halves",
    "summarize",
    "systema_pearson_delta",
    "target_gene_mask",
    "to_vcc",
    "top_de_genes",
    "topk_auroc",
    "topk_overlap",
    "vcc_score",
    "verdict",
    "verdict_frame",
    "welch_t_test",
    "write_vcc",
]
