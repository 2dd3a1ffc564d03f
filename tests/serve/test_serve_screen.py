"""Screens through the API run the real engine and equal celltwin.screen.screen."""

from __future__ import annotations

import time

import numpy as np
import pytest

from celltwin.models import load
from celltwin.screen import genes, get_objective, screen

API = "/api/v1"


def _wait(client, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(f"{API}/jobs/{job_id}").json()
        if status["status"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError("the screen did not finish")


def test_a_screen_job_equals_the_python_screen(client, model_dir, data) -> None:
    names = list(data.adata.var_names[:8])
    body = {
        "context": "A",
        "candidates": {"genes": names},
        "objective": {"name": "move", "params": {"down": [names[0]]}},
        "top": 5,
    }
    r = client.post(f"{API}/screen", json=body)
    assert r.status_code == 202, r.text
    done = _wait(client, r.json()["job_id"])
    assert done["status"] == "done", done["message"]
    controls = data.adata[data.adata.obs["perturbation"] == "control"].copy()
    expected = screen(
        load(model_dir), controls, candidates=genes(names), context="A",
        objective=get_objective("move", down=[names[0]]), top=5, progress=False,
    ).table  # fmt: skip
    assert done["n_rows"] == len(expected) == 8
    assert [row["label"] for row in done["rows"]] == list(expected["label"][:5])
    np.testing.assert_allclose([row["score"] for row in done["rows"]], expected["score"][:5])
    csv = client.get(f"{API}/jobs/{done['job_id']}/csv").text.splitlines()
    assert csv[0].startswith("rank,label,perturbation") and len(csv) == 9


@pytest.mark.parametrize(
    ("objective", "field"),
    [
        ({"name": "nonsense"}, "objective.name"),
        ({"name": "reverse", "params": {"query": "query.csv"}}, "objective.params"),
        ({"name": "reverse", "params": {"query": "README"}}, "objective.params"),
        ({"name": "move", "params": {"sideways": ["TF02"]}}, "objective.params"),
    ],
)
def test_bad_objectives_are_422(client, objective, field) -> None:
    body = {"context": "A", "candidates": {"genes": ["TF02"]}, "objective": objective}
    r = client.post(f"{API}/screen", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    if field == "objective.name":
        assert {"reverse", "mimic", "move", "specific"} <= set(r.json()["allowed"])


def test_jobs_run_in_about_ten_batches_so_their_progress_moves() -> None:
    from celltwin.serve._screen import batch_size

    assert batch_size(10) == 256  # one batch: small screens pay the set-up once
    assert batch_size(5_000) == 500  # ten batches
    assert batch_size(50_000) == 1024  # the engine's default at most
