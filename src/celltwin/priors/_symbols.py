"""One gene-symbol table: every symbol the prior files know, and how a name resolves to one.

The universe is the union of the symbols of GO, STRING, DoRothEA and PROGENy (about 20,000
human genes plus the non-coding ones the files name). :func:`resolve_genes` matches names
exactly, then case-insensitively (``stat1`` -> ``STAT1``), then through an alias table when one
is given, and suggests near misses ("did you mean") for the rest.

No alias source ships with the project: the shared priors hold no HGNC alias table and none
could be registered offline. ``aliases=`` takes one (``{alias: symbol}``, e.g. from the HGNC
complete set's ``alias_symbol`` / ``prev_symbol`` columns) so a registered table can be plugged
in without changing callers.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Final

import pandas as pd

from ._files import prior_path

#: The prior files whose symbols make up the universe, and the columns that hold them.
SYMBOL_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "go": ("symbol",),
    "string": ("symbol_a", "symbol_b"),
    "dorothea": ("tf", "target"),
    "progeny": ("gene",),
}

#: Values of the ``status`` column of :func:`resolve_genes`.
RESOLUTION_STATUS: Final = ("exact", "case", "alias", "unknown")


@cache
def _symbols_of(path: Path, columns: tuple[str, ...]) -> frozenset[str]:
    table = pd.read_csv(path, sep="\t", usecols=list(columns), dtype=str)
    return frozenset(str(s) for c in columns for s in table[c].dropna().unique())


def gene_symbols(sources: Iterable[str] = tuple(SYMBOL_COLUMNS)) -> pd.Index:
    """The sorted union of the gene symbols of the prior files ``sources``.

    Parameters
    ----------
    sources
        Any of ``go``, ``string``, ``dorothea``, ``progeny`` (default: all four). Each file is
        read once per process (from the shared folder or the download cache, see
        :func:`prior_path`).

    Returns
    -------
    pandas.Index
        Unique symbols, sorted.
    """
    names = list(sources)
    unknown = [s for s in names if s not in SYMBOL_COLUMNS]
    if unknown:
        raise ValueError(
            f"'sources' {unknown} are not symbol sources; choose from {sorted(SYMBOL_COLUMNS)}"
        )
    symbols: set[str] = set()
    for name in names:
        symbols |= _symbols_of(prior_path(name), SYMBOL_COLUMNS[name])
    return pd.Index(sorted(symbols), dtype=object)


def resolve_genes(
    names: Iterable[str],
    *,
    symbols: Iterable[str] | None = None,
    aliases: Mapping[str, str] | None = None,
    n_suggestions: int = 3,
) -> pd.DataFrame:
    """Resolve gene names to symbols of the prior universe.

    Parameters
    ----------
    names
        Names as a user wrote them.
    symbols
        The universe; default :func:`gene_symbols`.
    aliases
        Optional ``{alias or previous symbol: symbol}`` table (matched case-insensitively).
    n_suggestions
        Near misses to suggest for an unknown name (:func:`difflib.get_close_matches`).

    Returns
    -------
    pandas.DataFrame
        One row per name, in order: ``query``; ``symbol`` (the resolved symbol, ``""`` when
        unknown); ``status`` (``exact``, ``case``: matched ignoring case, ``alias``, or
        ``unknown``); ``suggestion`` (``;``-separated near misses of an unknown name, else
        ``""``).

    Examples
    --------
    >>> resolve_genes(["STAT1", "stat1", "STAT11"], symbols=["STAT1", "STAT2"])
        query symbol   status     suggestion
    0   STAT1  STAT1    exact
    1   stat1  STAT1     case
    2  STAT11          unknown  STAT1;STAT2
    """
    universe = gene_symbols() if symbols is None else pd.Index(list(symbols))
    exact = set(map(str, universe))
    upper: dict[str, str] = {}
    for s in sorted(exact):
        upper.setdefault(s.upper(), s)
    alias = {str(k).upper(): str(v) for k, v in (aliases or {}).items()}
    rows = []
    for query in map(str, names):
        if query in exact:
            rows.append((query, query, "exact", ""))
        elif query.upper() in upper:
            rows.append((query, upper[query.upper()], "case", ""))
        elif query.upper() in alias:
            rows.append((query, alias[query.upper()], "alias", ""))
        else:
            close = difflib.get_close_matches(query.upper(), upper, n=n_suggestions, cutoff=0.75)
            rows.append((query, "", "unknown", ";".join(upper[c] for c in close)))
    return pd.DataFrame(rows, columns=["query", "symbol", "status", "suggestion"])
