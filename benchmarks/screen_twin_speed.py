"""Speed of the move_population objective: 10,000 candidates over 500 + 500 cells x 2,000 genes.

python benchmarks/screen_twin_speed.py
"""

from __future__ import annotations

import time

import anndata as ad
import numpy as np

from celltwin.screen import move_population


def main() -> None:
    rng = np.random.default_rng(0)
    n_genes = 2000
    sample = ad.AnnData(rng.gamma(2, 0.5, (500, n_genes)).astype(np.float32))
    reference = ad.AnnData(rng.gamma(2, 0.5, (500, n_genes)).astype(np.float32))
    genes = list(sample.var_names)
    t0 = time.perf_counter()
    objective = move_population(sample, reference)
    t1 = time.perf_counter()
    effects = rng.normal(0, 0.05, (10_000, n_genes))
    scores = objective.score(effects, genes)
    t2 = time.perf_counter()
    objective.pvalues(effects, genes, scores)
    t3 = time.perf_counter()
    print(f"build {t1 - t0:.2f} s; score 10,000 {t2 - t1:.2f} s; p-values {t3 - t2:.2f} s")


if __name__ == "__main__":
    main()
