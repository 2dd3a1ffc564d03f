"""Growth curves: time and peak memory of out-of-core pseudobulk, DE and a group-by-group epoch.

Each step runs in a fresh subprocess whose address space is capped with
``resource.setrlimit(RLIMIT_AS)`` (``--limit-gib``, default 3): a step that tried to load the
matrix would fail, and ``in_memory`` (``anndata.read_h5ad`` of the whole file) shows that it does.
The child reports its own peak RSS (VmHWM). Files come from benchmarks/dask_scaling_data.py.

Steps:

- ``pseudobulk``: :func:`celltwin.pp.pseudobulk` from the path (one streamed pass).
- ``welch``: :func:`celltwin.eval.differential_expression` ``method="welch"`` (one streamed pass).
- ``wilcoxon``: the same with ``method="wilcoxon"``: batches of at most ``--max-cells`` cells
  (each context's groups plus its control) read and tested one after the other.
- ``epoch``: :func:`celltwin.pp.iter_groups` over every (context, perturbation, dose), i.e. what a
  training epoch reads from disk (cells/s).
- ``in_memory``: ``anndata.read_h5ad(path)``, expected to fail under the limit at 1M cells and up.
- ``dask1``/``dask2``: pseudobulk and Wilcoxon DE on a LocalCluster of 1 and 2 worker processes
  (one thread each; the cluster's start is not timed; not under the limit: workers are
  separate processes).

Usage::

    python benchmarks/dask_scaling_data.py /tmp/dask-bench
    python benchmarks/dask_scaling.py /tmp/dask-bench --sizes 100000 1000000 5000000 \\
        --out benchmarks/notes/dask_scaling.json
    python benchmarks/dask_scaling.py --plot benchmarks/notes/dask_scaling.json \\
        --figure docs/_static/scale_growth.png   # and prints the table
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

GIB = 1024**3
STEPS = ("pseudobulk", "welch", "wilcoxon", "epoch", "in_memory")


def _peak_gib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / GIB
    return float("nan")


def child(step: str, path: str, limit_gib: float, max_cells: int) -> None:
    """Run one step under the memory limit and print a JSON line."""
    if limit_gib > 0:
        cap = int(limit_gib * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import numpy as np

    from celltwin.eval import differential_expression
    from celltwin.pp import iter_groups, pseudobulk

    t0 = time.perf_counter()
    answer: dict[str, object] = {}
    try:
        if step == "pseudobulk":
            answer["groups"] = pseudobulk(path).n_obs
        elif step in ("welch", "wilcoxon"):
            res = differential_expression(path, method=step, max_cells=max_cells)  # type: ignore[arg-type]
            answer["groups"] = int(sum(r.groups.size for r in res.values()))
            answer["significant"] = int(sum((r.fdr < 0.05).sum() for r in res.values()))
        elif step == "epoch":
            cells = 0
            for _, group in iter_groups(path, max_cells=max_cells):
                cells += group.n_obs
                np.asarray(group.X.sum(axis=0))  # touch the values, as a training step would
            answer["cells"] = cells
        elif step == "in_memory":
            import anndata as ad

            answer["cells"] = ad.read_h5ad(path).n_obs
        answer["ok"] = True
    except Exception as err:  # anndata wraps a MemoryError while reading into its own error
        cause = err if isinstance(err, MemoryError) else (err.__cause__ or err)
        answer["ok"] = False
        answer["error"] = f"{type(cause).__name__}: {str(cause)[:120]}"
    answer["seconds"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    answer["cpu_s"] = usage.ru_utime + usage.ru_stime  # with imports; steadier under load
    answer["peak_gib"] = _peak_gib()
    print(json.dumps(answer), flush=True)


def dask_child(path: str, n_workers: int, max_cells: int) -> None:
    """Pseudobulk and Wilcoxon DE on a LocalCluster of ``n_workers`` processes."""
    from distributed import Client, LocalCluster

    from celltwin.eval import differential_expression
    from celltwin.pp import pseudobulk

    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=":0") as c,
        Client(c) as client,
    ):
        client.wait_for_workers(n_workers)
        t0 = time.perf_counter()
        pseudobulk(path, scheduler=client)
        t1 = time.perf_counter()
        differential_expression(path, method="wilcoxon", max_cells=max_cells, scheduler=client)
        t2 = time.perf_counter()
    print(json.dumps({"ok": True, "pseudobulk_s": t1 - t0, "wilcoxon_s": t2 - t1}), flush=True)


def _run(args: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"ok": False, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(lines[-1])


def measure(opts: argparse.Namespace) -> None:
    results = json.loads(opts.out.read_text()) if opts.out.exists() else []
    for n in opts.sizes:
        path = opts.directory / f"cells_{n}.h5ad"
        for step in opts.steps:
            if step in ("wilcoxon", "epoch") and n > opts.group_max_cells:
                continue
            row = _run(["--child", step, str(path), str(opts.limit_gib), str(opts.max_cells)])
            row.update(cells=n, step=step, limit_gib=opts.limit_gib, max_cells=opts.max_cells)
            print(json.dumps(row), flush=True)
            results.append(row)
            opts.out.write_text(json.dumps(results, indent=1))
        if n <= opts.dask_max_cells:
            for workers in (1, 2):
                row = _run(["--dask-child", str(path), str(workers), str(opts.max_cells)])
                row.update(cells=n, step=f"dask{workers}")
                print(json.dumps(row), flush=True)
                results.append(row)
                opts.out.write_text(json.dumps(results, indent=1))


def plot(results_paths: list[Path], figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for p in results_paths for r in json.loads(p.read_text()) if r.get("ok")]
    rows = [r for r in rows if "seconds" in r]
    steps = [s for s in STEPS if s != "in_memory" and any(r["step"] == s for r in rows)]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for step in steps:
        pts = sorted((r["cells"], r["seconds"], r["peak_gib"]) for r in rows if r["step"] == step)
        cells = [p[0] for p in pts]
        ax_t.plot(cells, [p[1] for p in pts], marker="o", label=step)
        ax_m.plot(cells, [p[2] for p in pts], marker="o", label=step)
    limit = max((r.get("limit_gib", 0) for r in rows), default=0)
    if limit:
        ax_m.axhline(limit, color="grey", linestyle="--", label=f"enforced limit ({limit:g} GiB)")
        failed = sorted(
            {r["cells"] for p in results_paths for r in json.loads(p.read_text())
             if r["step"] == "in_memory" and not r.get("ok")}
        )  # fmt: skip
        if failed:
            ax_m.scatter(failed, [limit] * len(failed), marker="x", s=80, color="black",
                         zorder=5, label="read_h5ad (in memory): fails")  # fmt: skip
    for ax, label in ((ax_t, "seconds (wall, loaded machine)"), (ax_m, "peak memory (GiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("cells on disk (2,000 genes)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ticks = [0.5, 1, 2, 3]
    ax_m.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax_m.set_yticks([], minor=True)
    ax_m.set_ylim(0.4, 6)
    ax_t.set_title("time")
    ax_m.set_title("peak memory (RSS of the process)")
    ax_m.legend(loc="upper left", fontsize=8, ncols=2)
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)


def table(paths: list[Path]) -> str:
    """The results as a markdown table (one row per size and step)."""
    rows = [r for p in paths for r in json.loads(p.read_text())]
    lines = [
        "| cells | step | ok | seconds | CPU s | peak RSS (GiB) | note |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["cells"], str(r["step"]), r.get("run", 0))):
        if str(r["step"]).startswith("dask"):
            note = f"run {r.get('run', 1)}: pseudobulk {r['pseudobulk_s']:.1f} s, "
            note += f"wilcoxon {r['wilcoxon_s']:.1f} s"
            lines.append(f"| {r['cells']:,} | {r['step']} | {r['ok']} | | | | {note} |")
            continue
        note = r.get("error", "") or ", ".join(
            f"{k} {r[k]:,}" for k in ("groups", "significant") if k in r
        )
        lines.append(
            f"| {r['cells']:,} | {r['step']} | {r['ok']} | {r['seconds']:.1f} "
            f"| {r['cpu_s']:.0f} | {r['peak_gib']:.2f} | {note} |"
            if "cpu_s" in r
            else f"| {r['cells']:,} | {r['step']} | {r['ok']} | {r['seconds']:.1f} | "
            f"| {r['peak_gib']:.2f} | {note} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        step, path, limit, max_cells = sys.argv[2:6]
        child(step, path, float(limit), int(max_cells))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--dask-child":
        path, workers, max_cells = sys.argv[2:5]
        dask_child(path, int(workers), int(max_cells))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, nargs="?")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--steps", nargs="*", default=list(STEPS), choices=STEPS)
    parser.add_argument("--limit-gib", type=float, default=3.0)
    parser.add_argument("--max-cells", type=int, default=200_000)
    parser.add_argument("--group-max-cells", type=int, default=1_000_000,
                        help="largest file for wilcoxon and epoch (they read a spread file "
                        "once per batch)")  # fmt: skip
    parser.add_argument("--dask-max-cells", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("dask_scaling.json"))
    parser.add_argument("--plot", type=Path, nargs="+", help="plot these results files, exit")
    parser.add_argument("--figure", type=Path, default=Path("docs/_static/scale_growth.png"))
    opts = parser.parse_args()
    if opts.plot:
        plot(opts.plot, opts.figure)
        print(table(opts.plot))
        return
    measure(opts)


if __name__ == "__main__":
    main()
