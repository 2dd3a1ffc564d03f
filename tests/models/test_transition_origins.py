"""The source of each answer and the reason of each refusal (``models/_transition/_origins``)."""

from __future__ import annotations

import pytest

from celltwin._keys import PREDICTION_SOURCES
from celltwin._settings import shared_dir
from celltwin.models._transition._origins import (
    REFUSAL_COLUMNS,
    prediction_source,
    refusal,
    refusals_table,
    resolve_gene_prior,
)

needs_shared = pytest.mark.skipif(
    not (shared_dir() / "priors").is_dir(),
    reason="prior files not found: set CELLTWIN_SHARED to the shared folder",
)


def test_every_view_has_a_user_facing_source() -> None:
    views = ("own", "context", "dose", "combination", "features")
    got = [prediction_source(v, "go+string") for v in views]
    assert got == ["measured", "transferred", "transferred", "composed", "prior"]
    assert prediction_source("features", "data") == "features"
    assert prediction_source(None, "data") == "control"
    assert set(got) | {"features", "control"} <= set(PREDICTION_SOURCES)


def test_refusal_of_a_drug_without_features_names_the_library() -> None:
    key = ("A", "drugX+drugY", "0.1")
    reason, hint = refusal(
        key, measured={"drugY"}, featured={"drugY"}, feature_source="external", genetic=False
    )
    assert "no features for ['drugX']" in reason and "--drugs FILE" in hint
    table = refusals_table([(key, reason, hint)])
    assert list(table.columns) == list(REFUSAL_COLUMNS)
    assert table["condition"].tolist() == ["A:drugX+drugY:0.1"]


@needs_shared
def test_gene_refusals_tell_a_typo_from_a_gene_without_features() -> None:
    measured = {"STAT1", "IRF1", "JAK2"}
    ask = {"measured": measured, "featured": measured, "genetic": True}
    reason, hint = refusal(("T", "NOTAGENE", ""), feature_source="go+string", **ask)
    assert reason == "'NOTAGENE' is not a known gene symbol" and hint == ""
    reason, hint = refusal(("T", "irf9", ""), feature_source="go+string", **ask)
    assert "as written" in reason and hint == "did you mean IRF9?"
    reason, _ = refusal(("T", "TP53", ""), feature_source="go+string", **ask)
    assert reason.startswith("no prior features for ['TP53']")
    # Simulated names are not checked against human symbols.
    sim = {"measured": {"G001", "G002"}, "featured": set(), "genetic": True}
    reason, _ = refusal(("T", "G003", ""), feature_source="data", **sim)
    assert reason.startswith("never measured, and no features for ['G003']")
    assert resolve_gene_prior("auto", ["STAT1", "IRF1", "G001"]) == "go+string"
    assert resolve_gene_prior("auto", ["G001", "G002", "STAT1"]) == "data"
    assert resolve_gene_prior("dorothea", ["G001"]) == "dorothea"
