"""Gene names: canonical ``var_names`` are unique gene symbols, ``var['gene_id']`` holds Ensembl IDs."""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
import pandas as pd
from anndata.utils import make_index_unique

from .._keys import GENE_ID
from ._problems import Problem, ValidationError, preview

logger = logging.getLogger("celltwin")

#: Ensembl gene IDs of any species (ENSG..., ENSMUSG...), with an optional version suffix.
ENSEMBL_PATTERN = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
#: var columns that may hold gene symbols, in order of preference.
SYMBOL_KEYS = (
    "gene_symbols",
    "gene_symbol",
    "feature_name",
    "gene_name",
    "symbol",
    "gene_short_name",
    "gene",
)
#: var columns that may hold Ensembl IDs, in order of preference.
GENE_ID_KEYS = (GENE_ID, "gene_ids", "ensembl_id", "ensembl_gene_id", "feature_id", "ensemble_id")

_EMPTY_NAMES = frozenset({"", "nan", "none", "<na>"})


def _ensembl_fraction(names: pd.Index | pd.Series) -> float:
    text = pd.Series(np.asarray(names, dtype=object)).dropna().astype(str)
    if len(text) == 0:
        return 0.0
    return float(text.str.match(ENSEMBL_PATTERN).mean())


def looks_ensembl(names: pd.Index | pd.Series) -> bool:
    """``True`` when most names are Ensembl gene IDs."""
    return _ensembl_fraction(names) >= 0.5


def _empty_mask(names: pd.Index | pd.Series) -> np.ndarray:
    values = pd.Series(np.asarray(names, dtype=object))
    return (
        values.isna() | values.astype(str).str.strip().str.lower().isin(_EMPTY_NAMES)
    ).to_numpy()


def var_name_problems(names: pd.Index, *, var_columns: list[str] | None = None) -> list[Problem]:
    """Problems with gene names: empty, duplicated, or Ensembl IDs where symbols are needed."""
    problems = []
    empty = _empty_mask(names)
    if empty.any():
        positions = np.flatnonzero(empty)
        problems.append(
            Problem(
                code="empty_genes",
                what=f"{empty.sum()} gene name(s) are empty or missing",
                where=f"var_names at positions {preview(positions.tolist())}",
                fix="give every gene a symbol, or drop those genes "
                "(adata = adata[:, adata.var_names.notna() & (adata.var_names != '')])",
            )
        )
    dup = pd.Index(names)[pd.Index(names).duplicated(keep=False) & ~empty]
    if len(dup):
        counts = pd.Series(dup).value_counts()
        shown = [f"{name} x{n}" for name, n in counts.head(5).items()]
        problems.append(
            Problem(
                code="duplicate_genes",
                what=f"{len(counts)} gene name(s) occur more than once",
                where=f"var_names: {preview(shown)}",
                fix="make them unique with adata.var_names_make_unique() (appends -1, -2, ...), "
                "or sum or drop the duplicated genes, before reading",
            )
        )
    if looks_ensembl(names):
        columns = ", ".join(var_columns) if var_columns else "none"
        problems.append(
            Problem(
                code="ensembl_ids",
                what="genes are named by Ensembl IDs but celltwin needs gene symbols, "
                "and no var column with symbols was found",
                where=f"var_names such as {preview(list(names[:3]), limit=3)}; "
                f"looked for var columns {', '.join(SYMBOL_KEYS)}; var columns present: {columns}",
                fix="pass gene_symbol_key='<var column with symbols>' to celltwin.io.read or "
                "to_canonical, or set adata.var_names to gene symbols first",
            )
        )
    return problems


def _symbol_column(var: pd.DataFrame) -> str | None:
    for key in SYMBOL_KEYS:
        if key in var.columns:
            values = var[key]
            filled = ~_empty_mask(values)
            if filled.mean() >= 0.5 and not looks_ensembl(values[filled]):
                return key
    return None


def adapt_var(
    var: pd.DataFrame, *, gene_symbol_key: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return a copy of ``var`` indexed by unique gene symbols, with Ensembl IDs in ``gene_id``.

    Ensembl-named genes are mapped to symbols through ``var[gene_symbol_key]`` or, when not given,
    the first of :data:`SYMBOL_KEYS` present; genes without a symbol keep their ID, and symbols
    shared by several IDs are made unique (``-1``, ``-2``). Genes already named by symbols are kept.

    Raises
    ------
    ValidationError
        When gene names are empty, duplicated, or Ensembl IDs with no symbols available.
    """
    var = var.copy()
    names = pd.Index(var.index.astype(str))
    record: dict[str, Any] = {}
    if gene_symbol_key is not None and gene_symbol_key not in var.columns:
        raise ValidationError(
            [
                Problem(
                    code="missing_column",
                    what=f"gene_symbol_key={gene_symbol_key!r} is not a var column",
                    where=f"var columns: {preview(list(var.columns), limit=20) or 'none'}",
                    fix="pass the name of the var column that holds gene symbols",
                )
            ]
        )
    key = gene_symbol_key or (_symbol_column(var) if looks_ensembl(names) else None)
    if key is not None:
        symbols = pd.Series(np.asarray(var[key], dtype=object), index=names)
        missing = _empty_mask(symbols)
        # A gene without a symbol keeps its ID rather than becoming an empty name.
        symbols = symbols.astype(str).where(~missing, names.to_series(index=names))
        if GENE_ID not in var.columns and looks_ensembl(names):
            var[GENE_ID] = np.asarray(names, dtype=object)
        n_dup = int(pd.Index(symbols).duplicated().sum())
        var.index = make_index_unique(pd.Index(symbols.to_numpy(), dtype=object))
        record = {"gene_symbol_key": key, "n_without_symbol": int(missing.sum())}
        record["n_made_unique"] = n_dup
        logger.info(
            "celltwin: gene names taken from var[%r] (%d without a symbol kept their ID, "
            "%d duplicated symbols made unique)",
            key,
            int(missing.sum()),
            n_dup,
        )
    elif GENE_ID not in var.columns:
        for id_key in GENE_ID_KEYS[1:]:
            if id_key in var.columns and looks_ensembl(var[id_key]):
                var[GENE_ID] = np.asarray(var[id_key], dtype=object)
                record = {"gene_id_key": id_key}
                break
    problems = var_name_problems(pd.Index(var.index), var_columns=[str(c) for c in var.columns])
    if problems:
        raise ValidationError(problems)
    return var, record
