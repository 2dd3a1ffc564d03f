"""Causal map of a real CRISPR screen (Papalexi 2021 THP-1 subset, 26 knockouts x 299 genes in the
shared folder), scored against DoRothEA (A-C, directed TF -> target) and STRING (>= 700,
undirected) where they overlap the measured genes (issue 19, point 5). No ground truth here: the
priors are incomplete and context-free, so this says how much of the measured map they know.

    PYTHONPATH=src nice -n 10 python benchmarks/explain_papalexi_map.py
"""

from __future__ import annotations

import time

from celltwin.data import load
from celltwin.explain import causal_map, correlation_map, score_map
from celltwin.priors import read_dorothea, read_string


def main() -> None:
    start = time.time()
    adata = load("papalexi2021_subset")
    cmap = causal_map(adata)
    corr = correlation_map(adata)
    dorothea = read_dorothea(confidence="ABC").rename(columns={"tf": "source", "mor": "sign"})
    string = read_string().rename(columns={"gene_a": "source", "gene_b": "target"})
    print(f"{adata.n_obs} cells, {adata.n_vars} genes, {cmap.tests['source'].nunique()} targets")
    print(f"causal map: {len(cmap.edges)} edges at FDR < 0.05; correlation: {len(corr.edges)}")
    print(cmap.edges.head(15).to_string(index=False))
    # the correlation network can only test targets that are measured genes: score both maps on
    # those (same universe), and the causal map on all its targets too
    measured = corr.tests["source"].unique()
    genes = adata.var_names
    maps = (("causal_map (all targets)", cmap, None), ("causal_map", cmap, measured),
            ("correlation", corr, measured))  # fmt: skip
    for name, m, sources in maps:
        for truth, table, directed in (("dorothea_ABC", dorothea, True),
                                       ("string_700", string, False)):  # fmt: skip
            s = score_map(m, table, sources=sources, genes=genes if sources is not None else None,
                          overlap=True, directed=directed)  # fmt: skip
            print(f"{name} vs {truth}: " + ", ".join(f"{k}={v:.3g}" for k, v in s.items()))
    print(f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
