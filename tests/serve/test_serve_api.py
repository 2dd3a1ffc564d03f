"""Predictions, search and refusals through the API agree with the Python API (issue 20)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from celltwin.models import load, predict_effects

API = "/api/v1"


@pytest.fixture(scope="module")
def direct(model_dir, data):
    """The saved model and its control cells, asked directly (no server)."""
    return load(model_dir), data.adata


def _effect(direct, context: str, perturbation: str) -> np.ndarray:
    model, adata = direct
    return np.asarray(predict_effects(model, adata, conditions=[(context, perturbation)]).X[0])


def test_health_and_model(client, data) -> None:
    assert client.get(f"{API}/health").json() == {"status": "ok", "model": "transition"}
    info = client.get(f"{API}/model").json()
    assert info["contexts"] == ["A", "B", "C"]
    assert data.seen_combo in info["perturbations"]
    assert info["n_genes"] == data.adata.n_vars
    assert info["benchmark"] is None


def test_predict_equals_the_python_api(client, direct, data) -> None:
    r = client.post(f"{API}/predict", json={"context": "A", "perturbation": data.held_single})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = _effect(direct, "A", data.held_single)
    np.testing.assert_allclose(body["effect"], expected, rtol=1e-6, atol=1e-7)
    assert body["genes"] == list(data.adata.var_names)
    lower, upper = np.array(body["lower"], float), np.array(body["upper"], float)
    assert (lower <= np.array(body["effect"]) + 1e-6).all() and (upper >= lower).all()
    assert 0 <= body["in_domain"] <= 1 and body["source"]
    top = [g["gene"] for g in body["top_genes"]]
    assert top == [body["genes"][i] for i in np.argsort(-np.abs(expected), kind="stable")[:20]]


def test_pairs_are_canonical_and_case_is_forgiven(client, data) -> None:
    a, b = data.seen_combo.split("+")
    r = client.post(f"{API}/predict", json={"context": "b", "perturbation": f"{b.lower()}+{a}"})
    assert r.status_code == 200, r.text
    assert (r.json()["context"], r.json()["perturbation"]) == ("B", data.seen_combo)
    assert r.json()["source"] == "measured"


def test_concurrent_requests_get_independent_answers(client, direct, data) -> None:
    """Threads asking different perturbations at once each get their own, exact answer."""
    perturbations = [*sorted(set(data.adata.var_names[:12])), data.seen_combo]
    asks = [("A" if i % 2 else "B", p) for i, p in enumerate(perturbations)] * 2

    def ask(condition: tuple[str, str]) -> list[float]:
        r = client.post(
            f"{API}/predict", json={"context": condition[0], "perturbation": condition[1]}
        )
        assert r.status_code == 200, r.text
        return r.json()["effect"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, asks))
    for condition, answer in zip(asks, answers, strict=True):
        np.testing.assert_allclose(answer, _effect(direct, *condition), rtol=1e-6, atol=1e-7)


def test_unknown_gene_gets_suggestions(client, data) -> None:
    wrong = data.held_single + "X"
    r = client.post(f"{API}/predict", json={"context": "A", "perturbation": wrong})
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "perturbation" and data.held_single in body["suggestions"]
    assert "did you mean" in body["detail"]


def test_unknown_context_lists_the_contexts(client, data) -> None:
    r = client.post(f"{API}/predict", json={"context": "nowhere", "perturbation": "TF02"})
    assert r.status_code == 422
    assert r.json()["field"] == "context" and r.json()["allowed"] == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"context": "A", "perturbation": "TF02", "dose": -1}, "dose"),
        ({"context": "A", "perturbation": "TF02", "dose": 1e9}, "dose"),
        ({"context": "A", "perturbation": "TF02", "top": 0}, "top"),
        ({"context": "A"}, "perturbation"),
        ({"context": "A", "perturbation": "TF02", "model_path": "/etc"}, "model_path"),
        ({"context": "A", "perturbation": "TF02+"}, "perturbation"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(client, body, field) -> None:
    r = client.post(f"{API}/predict", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_malformed_json_is_422_not_500(client) -> None:
    r = client.post(
        f"{API}/predict", content=b'{"context": "A",', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["detail"]


def test_search_puts_prefix_matches_first(client, data) -> None:
    r = client.get(f"{API}/perturbations", params={"q": "f0", "limit": 50}).json()
    names = [i["name"] for i in r["items"]]
    assert names and all("F0" in n.upper() for n in names)
    r = client.get(f"{API}/perturbations", params={"q": "tf0", "limit": 50}).json()
    kinds = [i["kind"] for i in r["items"]]
    assert kinds == sorted(kinds, key=lambda k: k != "trained")  # trained before the others
    assert {i["name"] for i in r["items"]} >= {"TF02", data.seen_combo}
    genes = client.get(f"{API}/genes", params={"q": "02"}).json()["items"]
    upper = [g["name"] for g in genes]
    prefix = [n for n in upper if n.startswith("02")]
    assert upper[: len(prefix)] == prefix and "TF02" in upper
    assert client.get(f"{API}/genes", params={"limit": 0}).status_code == 422


def test_repeated_questions_are_answered_from_the_cache(app, client, monkeypatch) -> None:
    """Deterministic predictions are kept: the model is asked once per condition."""
    state = app.state.served
    calls = []
    original = state.effects_of
    monkeypatch.setattr(state, "effects_of", lambda c: calls.append(c) or original(c))
    monkeypatch.setattr(state, "cache_size", 2)
    state._cache.clear()
    bodies = [{"context": "A", "perturbation": p} for p in ("TF02", "TF04", "TF02", "TF06", "TF04")]
    answers = [client.post(f"{API}/predict", json=b).json()["effect"] for b in bodies]
    assert [c[0][1] for c in calls] == ["TF02", "TF04", "TF06", "TF04"]  # TF04 was forgotten
    assert answers[0] == answers[2] and answers[1] == answers[4]


def test_explain_refuses_genes_without_prior_knowledge(client, data) -> None:
    """The tiny model's genes are simulated names: nothing in DoRothEA/PROGENy/Hallmark."""
    pytest.importorskip("decoupler")
    r = client.post(f"{API}/explain", json={"context": "A", "perturbation": data.held_single})
    assert r.status_code == 422
    assert r.json()["detail"].startswith(f"cannot explain {data.held_single!r}")


def test_explain_without_prior_files_is_a_503_that_says_the_fix(client, data, monkeypatch) -> None:
    """Missing prior files are the server's problem (503 with the fix), never a crash (500)."""
    import celltwin.explain

    def missing(*args, **kwargs):
        raise FileNotFoundError("shared file priors/dorothea.csv is missing")

    monkeypatch.setattr(celltwin.explain, "explain", missing)
    r = client.post(f"{API}/explain", json={"context": "A", "perturbation": data.held_single})
    assert r.status_code == 503
    assert "CELLTWIN_SHARED" in r.json()["detail"]
