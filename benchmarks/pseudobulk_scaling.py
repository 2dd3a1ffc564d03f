"""Time and peak memory of streaming :func:`celltwin.pp.pseudobulk` against the number of cells.

For each size an on-disk ``.h5ad`` is written to a temporary folder (never the repository), then
``pseudobulk`` runs in a fresh subprocess that reports its own peak resident memory (VmHWM).
Two inputs are measured: the file path (streams only the needed obs columns and the matrix) and
a backed AnnData (``anndata.read_h5ad(path, backed="r")``, which also loads every layer). On the
smallest size the streamed result is checked against an independent in-memory computation.

Usage::

    python benchmarks/pseudobulk_scaling.py                      # 100k, 300k, 1M cells
    python benchmarks/pseudobulk_scaling.py --sizes 20000 50000  # quick

Data come from ``celltwin.simulate.write_h5ad`` (:data:`SIMULATION`: 2,000 genes, 3 contexts,
3 batches, about 650 non-zeros per cell, X and ``layers['counts']``). The backed input is only
measured up to ``--backed-max-cells`` because it loads the counts layer into memory.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GIB = 1024**3
MEMORY_LIMIT_GIB = 1.5  # the budget for 1M cells


# --- data ------------------------------------------------------------------------------------
#: A screen shaped like a mid-size Perturb-seq + drug experiment (about 630 groups).
SIMULATION = {
    "n_genes": 2000,
    "n_tfs": 100,
    "contexts": ("K562", "RPE1", "HepG2"),
    "n_perturbations": 150,
    "combinations": 20,
    "drugs": 10,
    "n_batches": 3,
}


def write_data(path: Path, *, n_cells: int, chunk_size: int, seed: int) -> None:
    """Write ``n_cells`` simulated canonical cells to ``path``, chunk by chunk."""
    from celltwin.simulate import write_h5ad

    write_h5ad(path, n_cells=n_cells, chunk_size=chunk_size, seed=seed, **SIMULATION)


# --- the measured child --------------------------------------------------------------------
def child(path: str, mode: str, chunk_size: int, match_batch: bool, out: str | None) -> None:
    import anndata as ad

    from celltwin.pp._pseudobulk import pseudobulk

    t0 = time.perf_counter()
    data = ad.read_h5ad(path, backed="r") if mode == "backed" else path
    pb = pseudobulk(data, chunk_size=chunk_size, match_batch=match_batch)
    seconds = time.perf_counter() - t0
    if out:
        pb.write_h5ad(out)
    answer = {"seconds": seconds, "n_groups": pb.n_obs, "n_genes": pb.n_vars}
    print(json.dumps({**answer, "peak_gib": _own_peak_rss_gib()}))


def _own_peak_rss_gib() -> float:
    """This process's peak RSS since exec.

    ``VmHWM`` belongs to the process's own address space; ``ru_maxrss`` of a child starts from
    its parent's RSS at fork, so it would report the parent's size when the parent is larger.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / GIB
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def measure(path: Path, mode: str, chunk_size: int, match_batch: bool, out: Path | None = None):
    """Run one child in a fresh process; return its JSON answer (seconds, peak RSS in GiB)."""
    cmd = [sys.executable, __file__, "_child", str(path), mode, str(chunk_size)]
    cmd += ["--match-batch"] if match_batch else []
    cmd += ["--out", str(out)] if out else []
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {shlex.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- agreement ----------------------------------------------------------------------------
def agreement(path: Path, pb_path: Path, match_batch: bool) -> dict[str, float]:
    """Max |streamed - reference| with the reference built group by group from in-memory data."""
    import anndata as ad
    import scipy.sparse as sp

    from celltwin._keys import BATCH, CONTROL, DOSE, PERTURBATION

    cells = ad.read_h5ad(path)
    pb = ad.read_h5ad(pb_path)
    by = pb.uns["celltwin"]["pseudobulk"]["by"]
    x = sp.csr_matrix(cells.X)
    keys = cells.obs[by].astype(str)
    match = [c for c in by if c not in (PERTURBATION, DOSE)]
    batch = cells.obs[BATCH].astype(str).to_numpy() if match_batch else np.zeros(cells.n_obs)
    is_ctrl = keys[PERTURBATION].to_numpy() == CONTROL
    cell_key = keys.agg("|".join, axis=1).to_numpy()
    match_key = keys[match].agg("|".join, axis=1).to_numpy() if match else np.zeros(cells.n_obs)
    ctrl_means: dict = {}
    err = {"mean": 0.0, "var": 0.0, "delta": 0.0, "n_cells": 0.0}
    for i, key in enumerate(pb.obs[by].astype(str).agg("|".join, axis=1)):
        rows = np.flatnonzero(cell_key == key)
        block = x[rows].toarray().astype(np.float64)
        mean = block.mean(axis=0)
        var = block.var(axis=0, ddof=1) if rows.size > 1 else np.full(block.shape[1], np.nan)
        control = np.zeros_like(mean)
        for b, k in zip(*np.unique(batch[rows], return_counts=True), strict=True):
            pool_key = (match_key[rows[0]], b)
            if pool_key not in ctrl_means:
                pool = is_ctrl & (match_key == pool_key[0]) & (batch == b)
                pooled = x[pool].astype(np.float64)
                ctrl_means[pool_key] = np.asarray(pooled.mean(axis=0)).ravel()
            control += k / rows.size * ctrl_means[pool_key]
        err["mean"] = max(err["mean"], float(np.abs(pb.X[i] - mean).max()))
        err["var"] = max(err["var"], float(np.nanmax(np.abs(pb.layers["var"][i] - var))))
        err["delta"] = max(
            err["delta"], float(np.abs(pb.layers["delta"][i] - (mean - control)).max())
        )
        err["n_cells"] = max(err["n_cells"], float(abs(pb.obs["n_cells"].iloc[i] - rows.size)))
    return err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--modes", nargs="+", default=["path", "backed"])
    parser.add_argument("--backed-max-cells", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()

    command = shlex.join([Path(sys.executable).name, *sys.argv])
    workdir = Path(tempfile.mkdtemp(prefix="celltwin_pb_", dir=args.workdir))
    try:
        rows, check = run(workdir, args)
    finally:
        shutil.rmtree(workdir)  # the files are large: never leave them behind

    print(f"\nCommand: `{command}`  ")
    print(f"Data: `celltwin.simulate.write_h5ad(**{SIMULATION})`, chunk_size={args.chunk_size}.  ")
    print("Peak RSS = VmHWM of the measuring subprocess (imports alone: ~0.14 GiB).\n")
    print(
        "| cells | input | file (GiB) | write (s) | groups x genes | match_batch | seconds | peak RSS (GiB) |"
    )
    print("|---:|---|---:|---:|---|---|---:|---:|")
    for n, mode, size, write_s, mb, r in rows:
        print(
            f"| {n:,} | {mode} | {size:.2f} | {write_s:.0f} | {r['n_groups']} x {r['n_genes']} "
            f"| {mb} | {r['seconds']:.1f} | {r['peak_gib']:.2f} |"
        )
    if check:
        n, err = check
        print(f"\nAgreement with an in-memory computation at {n:,} cells (max abs difference): ")
        print(", ".join(f"{k} {v:.1e}" for k, v in err.items()))
        if max(err.values()) > 1e-6:
            sys.exit("agreement check FAILED (> 1e-6)")
    for n, mode, _, _, _, r in rows:
        if n >= 1_000_000 and mode == "path":
            verdict = "within" if r["peak_gib"] < MEMORY_LIMIT_GIB else "OVER"
            print(
                f"\n{n:,} cells streamed from the path: {verdict} the {MEMORY_LIMIT_GIB} GiB budget."
            )


def run(workdir: Path, args: argparse.Namespace) -> tuple[list, tuple | None]:
    """Write each size, measure every input mode on it, check agreement once, delete the file."""
    rows, check = [], None
    for n in sorted(args.sizes):
        path = workdir / f"cells_{n}.h5ad"
        t0 = time.perf_counter()
        write_data(path, n_cells=n, chunk_size=args.chunk_size, seed=args.seed)
        write_s = time.perf_counter() - t0
        match_batch = _has_batch(path)
        for mode in args.modes:
            if mode == "backed" and n > args.backed_max_cells:
                continue
            first = check is None and mode == "path"
            out = workdir / "pb_check.h5ad" if first else None
            res = measure(path, mode, args.chunk_size, match_batch, out)
            rows.append((n, mode, path.stat().st_size / GIB, write_s, match_batch, res))
            print(f"{n} cells, {mode}: {res}", file=sys.stderr, flush=True)
            if first:
                check = (n, agreement(path, out, match_batch))
        path.unlink()
    return rows, check


def _has_batch(path: Path) -> bool:
    import h5py

    from celltwin._keys import BATCH

    with h5py.File(path, "r") as f:
        return BATCH in [str(c) for c in f["obs"].attrs.get("column-order", [])]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        p = argparse.ArgumentParser()
        p.add_argument("cmd"), p.add_argument("path"), p.add_argument("mode")
        p.add_argument("chunk_size", type=int)
        p.add_argument("--match-batch", action="store_true")
        p.add_argument("--out", default=None)
        a = p.parse_args()
        child(a.path, a.mode, a.chunk_size, a.match_batch, a.out)
    else:
        main()
