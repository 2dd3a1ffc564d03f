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
    welch_t_test,
)
from ._evaluate import evaluate, evaluate_files
from ._export import to_vcc, write_vcc
from ._metrics import (
    PCABasis,
    baseline_scaled,
    centroid_accuracy,
    des,
    energy_distance,
    fit_pca,
    mae,
    mean_of_centroids,
    mmd,
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
    vcc_score,
)
from ._registry import (
    INPUT_KINDS,
    METRICS,
    VCC_METRICS,
    Metric,
    MetricInputs,
    build_inputs,
    compute_metrics,
    get_metric,
    group_means,
    list_metrics,
    target_gene_mask,
)
from ._result import Evaluation
from ._stats import PairedComparison, Summary, bootstrap_ci, paired_comparison, summarize

__all__ = [
    "INPUT_KINDS",
    "METRICS",
    "VCC_METRICS",
    "Ceiling",
    "DEResult",
    "Evaluation",
    "Metric",
    "MetricInputs",
    "PCABasis",
    "PairedComparison",
    "Summary",
    "baseline_scaled",
    "benjamini_hochberg",
    "bootstrap_ci",
    "build_inputs",
    "centroid_accuracy",
    "compute_metrics",
    "des",
    "energy_distance",
    "evaluate",
    "evaluate_files",
    "fit_pca",
    "get_metric",
    "group_means",
    "list_metrics",
    "log2_fold_change",
    "mae",
    "mean_of_centroids",
    "mmd",
    "mse",
    "mse_top_de",
    "n_sig_spearman",
    "paired_comparison",
    "pds",
    "pearson_delta",
    "pearson_delta_top_de",
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
    "welch_t_test",
    "write_vcc",
]
