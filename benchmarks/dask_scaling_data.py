"""Build the on-disk files of the growth curves (benchmarks/dask_scaling.py) from a simulation.

``celltwin.simulate.write_h5ad`` draws 100,000 cells (2,000 genes, ~650 non-zeros per cell, the
screen of benchmarks/pseudobulk_scaling.py). Drawing 5 million cells that way takes about an
hour on this 2-core machine, so the larger files repeat the simulated cells: tile ``t`` copies
the 100,000 cells block by block in its own random block order, under new cell names. Cells stay
shuffled across conditions (a group's cells are spread over the whole file, as in a real screen);
every cell appears ``n_cells / 100,000`` times. Only ``X`` is written (no counts layer), as CSR
with float32 values, int32 indices and 64-bit indptr.

Usage::

    python benchmarks/dask_scaling_data.py DIR --sizes 100000 1000000 5000000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem, sparse_dataset, write_elem

BASE_CELLS = 100_000
BLOCK = 10_000
SIMULATION = {
    "n_genes": 2000,
    "n_tfs": 100,
    "contexts": ("K562", "RPE1", "HepG2"),
    "n_perturbations": 150,
    "combinations": 20,
    "drugs": 10,
    "n_batches": 3,
}


def base(directory: Path) -> Path:
    """The simulated 100,000 cells (written once)."""
    from celltwin.simulate import write_h5ad

    path = directory / "cells_100000.h5ad"
    if not path.exists():
        write_h5ad(path, n_cells=BASE_CELLS, chunk_size=50_000, seed=0, **SIMULATION)
    return path


def tile(source: Path, out: Path, *, n_cells: int, seed: int = 0) -> Path:
    """Write ``n_cells`` cells repeating ``source``'s in shuffled blocks of ``BLOCK`` rows."""
    rng = np.random.default_rng(seed)
    with h5py.File(source, "r") as src:
        obs = read_elem(src["obs"])
        var = read_elem(src["var"])
        rows = sparse_dataset(src["X"])
        n_blocks = -(-n_cells // BLOCK)
        per_tile = BASE_CELLS // BLOCK
        order = np.concatenate(
            [rng.permutation(per_tile) for _ in range(-(-n_blocks // per_tile))]
        )[:n_blocks]
        starts = order * BLOCK
        take = np.concatenate([np.arange(s, s + BLOCK) for s in starts])[:n_cells]
        big_obs = obs.iloc[take].copy()
        width = len(str(n_cells))
        big_obs.index = pd.Index([f"cell{i:0{width}d}" for i in range(n_cells)])
        with h5py.File(out, "w") as f:
            f.attrs["encoding-type"] = "anndata"
            f.attrs["encoding-version"] = "0.1.0"
            write_elem(f, "obs", big_obs)
            write_elem(f, "var", var)
            for key in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
                write_elem(f, key, {})
            done = 0
            for s in starts:
                block = rows[int(s) : int(s) + min(BLOCK, n_cells - done)]
                if done == 0:
                    block.indptr = block.indptr.astype(np.int64)
                    write_elem(f, "X", block, dataset_kwargs={"chunks": (1 << 16,)})
                else:
                    sparse_dataset(f["X"]).append(block)
                done += block.shape[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    source = base(args.directory)
    print(f"simulated {BASE_CELLS} cells in {time.perf_counter() - t0:.0f} s", flush=True)
    for n in args.sizes:
        out = args.directory / f"cells_{n}.h5ad"
        if n == BASE_CELLS or out.exists():
            continue
        t0 = time.perf_counter()
        tile(source, out, n_cells=n)
        size = out.stat().st_size / 1024**3
        print(f"{n} cells: {size:.1f} GiB in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
