"""The gene-symbol table: exact, case-insensitive and alias resolution, "did you mean"."""

from __future__ import annotations

import pytest

from celltwin import priors
from celltwin._settings import shared_dir

needs_shared = pytest.mark.skipif(
    not (shared_dir() / "priors").is_dir(),
    reason="prior files not found: set CELLTWIN_SHARED to the shared folder",
)

UNIVERSE = ["STAT1", "STAT2", "TP53", "C1orf112", "MARCHF8"]


def test_resolution_statuses_and_suggestions() -> None:
    table = priors.resolve_genes(
        ["TP53", "stat1", "c1ORF112", "MARCH8", "STAT11", "NOTAGENE"],
        symbols=UNIVERSE,
        aliases={"march8": "MARCHF8"},
    )
    assert list(table.columns) == ["query", "symbol", "status", "suggestion"]
    assert table["symbol"].tolist() == ["TP53", "STAT1", "C1orf112", "MARCHF8", "", ""]
    assert table["status"].tolist() == ["exact", "case", "case", "alias", "unknown", "unknown"]
    assert set(table["status"]) <= set(priors.RESOLUTION_STATUS)
    # A near miss is suggested; a name like no gene gets no suggestion.
    assert table["suggestion"].iloc[4].split(";")[0] in ("STAT1", "STAT2")
    assert table["suggestion"].iloc[5] == ""


def test_unknown_symbol_source_is_refused() -> None:
    with pytest.raises(ValueError, match="not symbol sources"):
        priors.gene_symbols(["kegg"])


@needs_shared
def test_universe_is_the_union_of_the_four_priors() -> None:
    universe = priors.gene_symbols()
    assert universe.is_unique and universe.is_monotonic_increasing
    assert len(universe) > 20_000
    go, string = priors.gene_symbols(["go"]), priors.gene_symbols(["string"])
    assert go.union(string).isin(universe).all()
    progeny_only = priors.gene_symbols(["progeny"]).difference(go.union(string))
    assert len(progeny_only) > 0 and progeny_only.isin(universe).all()
    table = priors.resolve_genes(["TP53", "stat1", "NOTAGENE"])
    assert table["symbol"].tolist() == ["TP53", "STAT1", ""]
