"""Load test of ``celltwin serve`` on loopback (issue 20): predictions and screen jobs.

Starts the real server (uvicorn, 127.0.0.1, a subprocess running ``celltwin serve``) on a
``transition`` model fitted on simulated cells whose genes are DoRothEA symbols (so regulator
and pathway activities are computed with each prediction), then:

1. ``--sequential`` single-condition predictions from one client: per-request latency;
2. ``--requests`` predictions from ``--clients`` concurrent clients (keep-alive connections):
   throughput, p50/p99, errors;
3. ``--jobs`` concurrent screen jobs (``--screen-genes`` candidates each, objective
   ``--objective``), polled until all finish: errors, time, and the latency of predictions
   asked while they run.

Every non-2xx answer (and every failed job) counts as an error. Writes JSON to ``--out``.

    python benchmarks/serve_load.py --out /tmp/serve_load.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

API = "/api/v1"


def build_model(folder: Path, *, n_genes: int, seed: int) -> dict:
    """Fit a small transition model on simulated cells (DoRothEA genes) and save it with its
    control cells; returns what was built."""
    from celltwin._keys import CONTROL, PERTURBATION
    from celltwin.models import get_model
    from celltwin.simulate import simulate

    start = time.perf_counter()
    sim = simulate(
        n_genes=n_genes, n_tfs=40, contexts=("A", "B", "C"), n_perturbations=30,
        combinations=5, cells_per_condition=40, grn="dorothea", seed=seed,
    )  # fmt: skip
    adata = sim.adata
    params = {"n_members": 2, "max_steps": 150, "progress": False}
    model = get_model("transition", **params).fit(adata, split_key=None)
    model.save(folder, overwrite=True)
    adata[adata.obs[PERTURBATION].astype(str) == CONTROL].write_h5ad(folder / "controls.h5ad")
    return {"cells": adata.n_obs, "genes": adata.n_vars, "params": params,
            "build_s": time.perf_counter() - start}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: Path, port: int, log: Path) -> subprocess.Popen:
    code = "import sys; from celltwin.cli import main; sys.argv[0] = 'celltwin'; main()"
    cmd = [sys.executable, "-c", code, "serve", str(model), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{API}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not start in 300 s")


def summary(latencies: list[float], errors: int, wall: float) -> dict:
    ms = np.asarray(latencies) * 1000
    return {
        "n": len(latencies), "errors": errors, "wall_s": round(wall, 2),
        "throughput_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }  # fmt: skip


def predict_load(base: str, asks: list[dict], clients: int) -> dict:
    """``asks`` sent by ``clients`` threads, each on its own keep-alive connection."""
    shares = [asks[i::clients] for i in range(clients)]

    def client(share: list[dict]) -> tuple[list[float], int]:
        times, errors = [], 0
        with httpx.Client(base_url=base, timeout=60) as c:
            for body in share:
                t = time.perf_counter()
                r = c.post(f"{API}/predict", json=body)
                times.append(time.perf_counter() - t)
                errors += r.status_code != 200
        return times, errors

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, shares))
    wall = time.perf_counter() - start
    return summary([t for ts, _ in results for t in ts], sum(e for _, e in results), wall)


def screen_load(base: str, genes: list[str], args: argparse.Namespace, asks: list[dict]) -> dict:
    """``args.jobs`` screens submitted at once, polled to the end; predictions meanwhile."""
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    ids, errors = [], 0
    with httpx.Client(base_url=base, timeout=60) as c:
        for _ in range(args.jobs):
            chosen = rng.choice(genes, min(args.screen_genes, len(genes)), replace=False)
            body = {"context": "A", "candidates": {"genes": [str(g) for g in chosen]},
                    "objective": {"name": args.objective, "params": json.loads(args.params)},
                    "top": 20}  # fmt: skip
            r = c.post(f"{API}/screen", json=body)
            if r.status_code == 202:
                ids.append(r.json()["job_id"])
            else:
                errors += 1
                print("screen refused:", r.status_code, r.text[:300], file=sys.stderr)
        during = predict_load(base, asks[:200], 2)
        states: dict[str, dict] = {}
        while len(states) < len(ids) and time.perf_counter() - start < 1800:
            for job_id in ids:
                if job_id not in states:
                    s = c.get(f"{API}/jobs/{job_id}").json()
                    if s["status"] in ("done", "failed", "cancelled"):
                        states[job_id] = s
            time.sleep(0.2)
    failed = [s for s in states.values() if s["status"] != "done"]
    for s in failed[:3]:
        print("job failed:", s["message"][:300], file=sys.stderr)
    runs = [s["finished"] - s["created"] for s in states.values() if s["finished"]]
    return {
        "jobs": args.jobs, "candidates_each": args.screen_genes, "objective": args.objective,
        "refused": errors, "failed": len(failed), "unfinished": len(ids) - len(states),
        "wall_s": round(time.perf_counter() - start, 2),
        "job_s_median": round(float(np.median(runs)), 2) if runs else None,
        "predict_during_screens": during,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, help="Saved model folder (default: build one).")
    p.add_argument("--genes", type=int, default=2000, help="Genes of the built model.")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--sequential", type=int, default=60, help="Distinct conditions, one client.")
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--screen-genes", type=int, default=10)
    p.add_argument(
        "--names", type=int, default=50,
        help="Distinct perturbations asked (x contexts = distinct conditions; the server keeps "
        "predictions, so repeats measure the cached path).",
    )  # fmt: skip
    p.add_argument("--objective", default="specific")
    p.add_argument("--params", default="{}", help="Objective parameters (JSON).")
    p.add_argument("--out", type=Path, default=Path("serve_load.json"))
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    built = None
    model = args.model
    if model is None:
        model = work / "model"
        built = build_model(model, n_genes=args.genes, seed=0)
        print("built", built, flush=True)
    port = free_port()
    server = start_server(model, port, work / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        info = httpx.get(f"{base}{API}/model", timeout=30).json()
        found = httpx.get(f"{base}{API}/perturbations", params={"limit": 200}).json()["items"]
        names = [g["name"] for g in found][: args.names]
        rng = np.random.default_rng(1)
        cold = [{"context": c, "perturbation": n} for n in names for c in info["contexts"]]
        asks = [{"context": str(rng.choice(info["contexts"])), "perturbation": str(rng.choice(names))}
                for _ in range(args.requests)]  # fmt: skip
        result = {
            "model": {k: info[k] for k in ("name", "n_genes", "n_perturbations", "activity_nets")},
            "built": built, "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
            "sequential_cold": predict_load(base, cold[: args.sequential], 1),
        }  # fmt: skip
        print("sequential cold", result["sequential_cold"], flush=True)
        result["sequential_cached"] = predict_load(base, cold[: args.sequential], 1)
        print("sequential cached", result["sequential_cached"], flush=True)
        result["concurrent"] = predict_load(base, asks, args.clients)
        print("concurrent", result["concurrent"], flush=True)
        result["screens"] = screen_load(base, names, args, asks)
        print("screens", result["screens"], flush=True)
        result["loadavg_after"] = os.getloadavg()
        args.out.write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
