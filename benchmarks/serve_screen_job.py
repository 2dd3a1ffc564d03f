"""A genome-wide screen job through a running ``celltwin serve``: its progress and wall time.

Start a server on a saved model first, e.g. the README's Papalexi model::

    celltwin serve model/ --data split.h5ad --port 8766 &
    python benchmarks/serve_screen_job.py --url http://127.0.0.1:8766

It posts a screen of every perturbation the model can represent (``candidates.all``), objective
``move`` (JAK-STAT down by default), polls ``GET /jobs/{id}`` every 0.2 s and prints each
(status, progress) step it saw and the seconds until the job ended.
"""

from __future__ import annotations

import argparse
import json
import time

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--context", default="THP-1")
    parser.add_argument("--pathway", default="JAK-STAT")
    parser.add_argument("--toward", default="down", choices=("up", "down"))
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    client = httpx.Client(base_url=f"{args.url}/api/v1", timeout=60)
    body = {
        "context": args.context,
        "candidates": {"all": True},
        "objective": {"name": "move", "params": {"pathway": args.pathway, "toward": args.toward}},
        "top": 20,
    }
    start = time.monotonic()
    posted = client.post("/screen", json=body)
    posted.raise_for_status()
    job = posted.json()
    steps: list[tuple[str, float]] = []
    status: dict = {}
    while time.monotonic() - start < args.timeout:
        status = client.get(f"/jobs/{job['job_id']}").json()
        step = (status["status"], round(status["progress"], 2))
        if not steps or steps[-1] != step:
            steps.append(step)
        if status["status"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.2)
    summary = {
        "candidates": job["n_candidates"],
        "status": status.get("status"),
        "seconds": round(time.monotonic() - start, 1),
        "steps": steps,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
