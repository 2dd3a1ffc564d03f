"""``celltwin evaluate`` vs ``cell-eval run --profile vcc`` as a new user meets them: a fresh
virtual environment, the first call included, both tools side by side in one run.

One command, standard library only (run it with any Python 3.11)::

    python benchmarks/eval_first_call.py                  # ~15 min on a quiet 2-core machine

What it does:

1. Creates a fresh virtual environment (``--venv``, default ``/tmp/venv-eval-first-call``;
   deleted first) and installs this checkout of celltwin and ``cell-eval==0.8.2`` into it with
   pip (torch is installed first as ``torch==2.13.0``, which pip takes from the CPU wheel on
   disk where there is one). Install time is printed, not counted.
2. Generates the VCC-sized files with that environment's Python
   (:func:`eval_speed.generate`: 200 perturbations x 100 cells, 2,000 control cells, 18,080
   genes, log1p CP10k, float32 CSR, written with :func:`celltwin.eval.write_vcc`).
3. Times three commands, each as a separate process, interleaved so that a change in the
   machine's load hits all of them alike: ``cell-eval run --profile vcc``, ``celltwin
   evaluate`` with default settings, and ``celltwin evaluate --metrics mae,des,pds
   --no-ceiling`` (the VCC metrics, like for like). Round 1 is the *first call*: before each
   command every numba cache file (``*.nbi``, ``*.nbc``) in the environment is deleted, as after
   a fresh install. Later rounds are *warm* (caches kept). The 1-minute load average is sampled
   every 2 s during each run and its mean printed beside the time.
4. Prints per-step timings of celltwin's runs (``celltwin -v``: wall and CPU seconds of
   reading, DE tests, metrics, ceiling, report) and the largest per-perturbation difference of
   mae, des and pds between the two tools.

Options: ``--reuse-venv`` keeps an existing environment (re-installs celltwin only),
``--rounds N`` (default 2: one first call, one warm), ``--n-perts/--n-genes/...`` for a smaller
check, ``--out DIR`` keeps data, logs and a ``results.md``.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CELL_EVAL = "cell-eval==0.8.2"
TORCH = "torch==2.13.0"
#: cell-eval's names of the VCC metrics in its results.csv.
CELL_EVAL_NAMES = {"mae": "mae", "des": "overlap_at_N", "pds": "discrimination_score_l1"}
GENERATE = """
import sys
sys.path.insert(0, {bench!r})
from eval_speed import generate
from celltwin.eval import write_vcc
truth, pred = generate(seed={seed}, n_perts={n_perts}, cells={cells}, n_control={n_control},
                       n_genes={n_genes})
write_vcc(truth, {truth!r})
write_vcc(pred, {pred!r})
"""


def sh(cmd: list[str], **kwargs: object) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def make_venv(venv: Path, *, reuse: bool) -> float:
    """Create (or reuse) the environment; returns the install time in seconds."""
    start = time.perf_counter()
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    if reuse and (venv / "bin" / "cell-eval").exists():
        sh([*pip, "--no-deps", "--force-reinstall", str(REPO)])
    else:
        shutil.rmtree(venv, ignore_errors=True)
        sh([sys.executable, "-m", "venv", str(venv)])
        sh([*pip, TORCH])
        sh([*pip, str(REPO), CELL_EVAL])
    return time.perf_counter() - start


def clear_numba_caches(venv: Path) -> int:
    """Delete every numba cache file of the environment (as right after installing)."""
    files = [*venv.rglob("*.nbi"), *venv.rglob("*.nbc")]
    for f in files:
        f.unlink()
    return len(files)


def timed_run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds of ``cmd`` and the mean 1-minute load average while it ran."""
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            loads.append(os.getloadavg()[0])
            done.wait(2.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        with log.open("w") as handle:
            subprocess.run(cmd, check=True, stdout=handle, stderr=subprocess.STDOUT, env=env)
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return seconds, sum(loads) / len(loads) if loads else os.getloadavg()[0]


def steps_of(log: Path) -> list[tuple[str, float, float]]:
    """``(step, wall, cpu)`` from the ``time:`` lines of ``celltwin -v``."""
    pattern = re.compile(r"time: (.+?) ([\d.]+) s \(CPU ([\d.]+) s\)")
    return [
        (m.group(1), float(m.group(2)), float(m.group(3)))
        for m in map(pattern.search, log.read_text().splitlines())
        if m
    ]


def agreement(ct_out: Path, ce_out: Path) -> dict[str, float]:
    """Largest per-perturbation |celltwin - cell-eval| of mae, des and pds."""
    ours: dict[str, dict[str, float]] = {}
    with (ct_out / "metrics.csv").open() as handle:
        for row in csv.DictReader(handle):
            ours.setdefault(row["metric"], {})[row["perturbation"]] = float(row["value"])
    with (ce_out / "results.csv").open() as handle:
        theirs = {row["perturbation"]: row for row in csv.DictReader(handle)}
    out = {}
    for ours_name, their_name in CELL_EVAL_NAMES.items():
        values = ours.get(ours_name, {})
        diffs = [abs(v - float(theirs[p][their_name])) for p, v in values.items() if p in theirs]
        if diffs:
            out[ours_name] = max(diffs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/venv-eval-first-call"))
    parser.add_argument("--reuse-venv", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-perts", type=int, default=200)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--n-control", type=int, default=2000)
    parser.add_argument("--n-genes", type=int, default=18080)
    args = parser.parse_args()

    install = make_venv(args.venv, reuse=args.reuse_venv)
    print(f"environment ready in {install:.0f} s ({args.venv})", flush=True)
    bin_dir = args.venv / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "PYTHON"))}
    with tempfile.TemporaryDirectory() as scratch:
        work = args.out or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        truth, pred = work / "truth.h5ad", work / "pred.h5ad"
        start = time.perf_counter()
        code = GENERATE.format(
            bench=str(REPO / "benchmarks"), truth=str(truth), pred=str(pred), seed=args.seed,
            n_perts=args.n_perts, cells=args.cells, n_control=args.n_control,
            n_genes=args.n_genes,
        )  # fmt: skip
        subprocess.run([str(bin_dir / "python"), "-c", code], check=True, env=env)
        print(f"data generated in {time.perf_counter() - start:.0f} s: {truth}, {pred}")
        for path in (truth, pred):  # the same warm page cache for every run
            path.read_bytes()
        ct = [str(bin_dir / "celltwin"), "-v", "evaluate", "--truth", str(truth)]
        ct += ["--pred", str(pred), "--force"]
        commands = {
            "cell-eval run --profile vcc": [
                str(bin_dir / "cell-eval"),
                "run",
                "-ap",
                str(pred),
                "-ar",
                str(truth),
                "--num-threads",
                str(args.threads),
                "--profile",
                "vcc",
            ],
            "celltwin evaluate (defaults)": ct,
            "celltwin evaluate --metrics mae,des,pds --no-ceiling": [
                *ct,
                "--metrics",
                "mae,des,pds",
                "--no-ceiling",
            ],
        }
        results = []
        for rnd in range(args.rounds):
            kind = "first call" if rnd == 0 else f"warm {rnd}"
            for i, (label, cmd) in enumerate(commands.items()):
                out = work / f"out_{i}_{rnd}"
                full = (
                    [*cmd, "-o", str(out)]
                    if label.startswith("cell-eval")
                    else [*cmd, "--out", str(out)]
                )
                if rnd == 0:
                    clear_numba_caches(args.venv)
                log = work / f"log_{i}_{rnd}.txt"
                seconds, load = timed_run(full, log, env)
                print(f"[{kind}] {label}: {seconds:.1f} s (load average {load:.1f})", flush=True)
                results.append((kind, label, seconds, load, out, log))
        lines = report(results, args, install)
        diff = agreement(results[2][4], results[0][4])
        lines.append(
            "\nmax |celltwin - cell-eval| per perturbation: "
            + ", ".join(f"{k} {v:.1e}" for k, v in diff.items())
        )
        text = "\n".join(lines)
        print(text)
        if args.out:
            (args.out / "results.md").write_text(text + "\n")
    return 0


def report(results: list[tuple], args: argparse.Namespace, install: float) -> list[str]:
    """The results as markdown: times and ratios, then celltwin's per-step timings."""
    ce = {kind: s for kind, label, s, *_ in results if label.startswith("cell-eval")}
    lines = [
        f"\ncores: {os.cpu_count()}; data: {args.n_perts} perturbations x {args.cells} cells, "
        f"{args.n_control} controls, {args.n_genes} genes; environment install {install:.0f} s",
        "",
        "| call | command | seconds | cell-eval / this | load average |",
        "|---|---|---:|---:|---:|",
    ]
    for kind, label, seconds, load, _, _ in results:
        ratio = ce[kind] / seconds
        lines.append(f"| {kind} | `{label}` | {seconds:.1f} | {ratio:.1f}x | {load:.1f} |")
    for kind, label, seconds, _, _, log in results:
        if label.startswith("celltwin"):
            lines += ["", f"{kind}, `{label}` ({seconds:.1f} s), steps (wall / CPU seconds):"]
            steps = steps_of(log)
            lines += [f"- {step}: {wall:.2f} / {cpu:.2f}" for step, wall, cpu in steps]
            counted = sum(w for _, w, _ in steps)
            lines.append(f"- the rest (start-up, imports, parsing, exit): {seconds - counted:.2f}")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
