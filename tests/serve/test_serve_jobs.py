"""Screen jobs: queued on worker threads, progress, results, cancel, failure, bounds."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from celltwin.serve import JOB_STATES, ScreenJob, create_app

API = "/api/v1"
RELEASE = threading.Event()


def fake_runner(job: ScreenJob, progress) -> pd.DataFrame:
    """Scores each single by its name's length; 'crash' objectives fail; 'wait' ones block."""
    if job.objective == "crash":
        raise RuntimeError("the objective exploded")
    if job.objective == "wait":
        while not RELEASE.wait(0.01):
            progress(0.5)  # raises once the job is cancelled
    labels = list(job.singles)
    progress(0.5)
    table = pd.DataFrame(
        {"label": labels, "perturbation": labels, "score": [float(len(x)) for x in labels]}
    )
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    table["in_domain"] = float("nan")
    return table


@pytest.fixture(scope="module")
def jobs(model_dir, client_of):
    app = create_app(model_dir, screen_runner=fake_runner, max_candidates=30, max_jobs=4)
    with client_of(app) as c:
        yield c


def _screen(client, objective: str = "fake", **candidates) -> dict:
    body = {
        "context": "A",
        "candidates": candidates or {"genes": ["TF02", "G027", "tf04"]},
        "objective": {"name": objective, "params": {}},
        "top": 2,
    }
    r = client.post(f"{API}/screen", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def _wait(client, job_id: str, until=("done", "failed", "cancelled")) -> dict:
    deadline = time.monotonic() + 60  # generous: the test machine is shared
    while time.monotonic() < deadline:
        status = client.get(f"{API}/jobs/{job_id}").json()
        if status["status"] in until:
            return status
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} never reached {until}")


def test_a_job_runs_and_returns_its_table(jobs) -> None:
    created = _screen(jobs)
    assert created["n_candidates"] == 3 and created["status"] in JOB_STATES  # may be done
    done = _wait(jobs, created["job_id"])
    assert done["status"] == "done" and done["progress"] == 1.0 and done["n_rows"] == 3
    assert [r["label"] for r in done["rows"]] == ["TF02", "G027"]  # top 2 of 3
    assert done["rows"][0]["in_domain"] is None
    csv = jobs.get(f"{API}/jobs/{created['job_id']}/csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "rank,label,perturbation,score,in_domain"
    assert len(csv.text.splitlines()) == 4 and "TF04" in csv.text  # canonical: tf04 -> TF04


def test_a_failing_job_is_reported_and_the_server_goes_on(jobs) -> None:
    failed = _wait(jobs, _screen(jobs, "crash")["job_id"])
    assert failed["status"] == "failed"
    assert failed["message"] == "RuntimeError: the objective exploded"
    assert failed["rows"] is None
    assert jobs.get(f"{API}/jobs/{failed['job_id']}/csv").status_code == 409
    assert jobs.get(f"{API}/health").status_code == 200
    r = jobs.post(f"{API}/predict", json={"context": "A", "perturbation": "TF02"})
    assert r.status_code == 200
    assert _wait(jobs, _screen(jobs)["job_id"])["status"] == "done"


def test_a_running_job_is_cancelled(jobs) -> None:
    RELEASE.clear()
    job_id = _screen(jobs, "wait")["job_id"]
    _wait(jobs, job_id, until=("running",))
    r = jobs.delete(f"{API}/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    time.sleep(0.05)
    assert jobs.get(f"{API}/jobs/{job_id}").json()["status"] == "cancelled"
    assert jobs.delete(f"{API}/jobs/{'f' * 32}").status_code == 404


def test_jobs_kept_are_bounded(jobs) -> None:
    """Finished jobs are forgotten oldest first; with every kept job unfinished: 429."""
    RELEASE.clear()
    waiting = [_screen(jobs, "wait")["job_id"] for _ in range(4)]
    body = {"context": "A", "candidates": {"genes": ["TF02"]}, "objective": {"name": "x"}}
    r = jobs.post(f"{API}/screen", json=body)
    assert r.status_code == 429 and "at most 4 kept" in r.json()["detail"]
    for job_id in waiting:
        jobs.delete(f"{API}/jobs/{job_id}")
    RELEASE.set()
    assert jobs.post(f"{API}/screen", json=body).status_code == 202
    assert jobs.get(f"{API}/jobs/{waiting[0]}").status_code == 404  # forgotten


@pytest.mark.parametrize(
    ("candidates", "params", "field"),
    [
        ({"genes": ["TF02", "NOPE1"]}, {}, "candidates.genes"),
        ({"pairs": "first 10 genes"}, {}, "candidates"),  # 45 pairs > 30
        ({"all": True}, {}, "candidates"),  # 40 genes > 30
        ({}, {}, "candidates"),
        ({"genes": ["TF02"]}, {"query": "/etc/passwd"}, "objective.params"),
        ({"genes": ["TF02"]}, {"query": {"up": ["sig.csv"]}}, "objective.params"),
    ],
)
def test_bad_screens_are_refused_before_queueing(jobs, data, candidates, params, field) -> None:
    if candidates.get("pairs") == "first 10 genes":
        candidates = {"pairs": list(data.adata.var_names[:10])}
    body = {"context": "A", "candidates": candidates, "objective": {"name": "x", "params": params}}
    r = jobs.post(f"{API}/screen", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
