"""Tokens, binding and body limits (issue 20, "Safety")."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from celltwin.cli import app as cli
from celltwin.serve import check_bind, create_app, is_loopback, read_token

API = "/api/v1"
TOKEN = "s3cret-token-of-some-length"


@pytest.fixture(scope="module")
def guarded(model_dir, client_of):
    with client_of(create_app(model_dir, token=TOKEN, max_body=2_000)) as c:
        yield c


def test_without_the_token_requests_are_refused(guarded) -> None:
    body = {"context": "A", "perturbation": "TF02"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = guarded.post(f"{API}/predict", json=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
    assert guarded.get(f"{API}/model").status_code == 401
    assert guarded.get(f"{API}/openapi.json").status_code == 401
    assert guarded.get(f"{API}/jobs/{'0' * 32}").status_code == 401


def test_with_the_token_requests_are_answered(guarded) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = guarded.post(f"{API}/predict", json={"context": "A", "perturbation": "TF02"}, headers=auth)
    assert r.status_code == 200
    assert guarded.get(f"{API}/health").status_code == 200  # open: for load balancers


def test_an_oversized_body_gets_413(guarded) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = {"context": "A", "perturbation": "TF02", "pad": "x" * 5_000}
    r = guarded.post(f"{API}/predict", json=big, headers=auth)
    assert r.status_code == 413 and "at most 2000 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(10):
            yield b"x" * 500

    r = guarded.post(f"{API}/predict", content=chunks(), headers=auth)
    assert r.status_code == 413
    assert guarded.get(f"{API}/health").status_code == 200


def test_non_loopback_bind_needs_a_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host)
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.4", "::", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(ValueError, match="without a token"):
            check_bind(host, None)
        check_bind(host, TOKEN)


def test_the_cli_refuses_a_public_host_without_a_token(tmp_path) -> None:
    """Refused before any model is read or port bound (the model folder does not exist)."""
    r = CliRunner().invoke(cli, ["serve", str(tmp_path / "absent"), "--host", "0.0.0.0"])
    assert r.exit_code == 2
    assert "refusing to listen on host='0.0.0.0' without a token" in r.output
    assert "--token-file FILE" in r.output and "Traceback" not in r.output


def test_token_files(tmp_path) -> None:
    good, short = tmp_path / "good", tmp_path / "short"
    good.write_text(f"  {TOKEN}\n")
    short.write_text("abc\n")
    assert read_token(good) == TOKEN
    with pytest.raises(ValueError, match="at least 16"):
        read_token(short)
    r = CliRunner().invoke(
        cli, ["serve", str(tmp_path), "--host", "0.0.0.0", "--token-file", str(short)]
    )
    assert r.exit_code == 2 and "--token-file" in r.output
