"""Reading and writing: any convention on disk <-> canonical AnnData in memory.

Names are translated once, on the way in (:func:`to_canonical`); writers produce another
convention's layout from canonical data (:func:`from_canonical`). Normalisation happens on the way
in too: integer counts are kept in ``layers['counts']`` and X becomes log-normalised; X that is
already log-normalised is kept, and never taken for counts.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import pandas as pd
from anndata import AnnData

from .._keys import COUNTS_LAYER, UNS_KEY
from .._normalize import log_normalize
from ._adapt import adapt_obs
from ._conventions import CONVENTIONS, DEFAULT_CONTEXT, Options, resolve_convention
from ._expression import expression_problems, matrix_stats
from ._genes import adapt_var
from ._problems import Problem, ValidationError, raise_if_errors
from ._validate import canonical_problems, is_canonical

logger = logging.getLogger("celltwin")


def _counts_from_raw(adata: AnnData, original_names: Any) -> bool:
    """Take counts from ``adata.raw`` when it holds integer counts for every gene of X."""
    if adata.raw is None:
        return False
    positions = adata.raw.var_names.get_indexer(original_names)
    if (positions < 0).any() or matrix_stats(adata.raw.X).kind != "counts":
        return False
    adata.layers[COUNTS_LAYER] = adata.raw.X[:, positions]
    return True


def _prepare_x(adata: AnnData, *, normalize: bool, original_names: Any) -> str:
    """Bring X to log-normalised form (counts kept aside); say what was done."""
    if adata.X is not None:
        raise_if_errors(expression_problems(adata.X, counts_ok=True))
    kind = matrix_stats(adata.X).kind
    record = adata.uns[UNS_KEY]
    if kind == "counts":
        if not normalize:
            record["x_kind"] = "counts"
            return "X holds counts, left as they are (backed file: load it to normalise)"
        log_normalize(adata)
        record["x_kind"] = "log_normalized"
        record["normalization"]["source"] = "counts in the file"
        return f"X: counts normalised and log1p'ed, counts kept in layers[{COUNTS_LAYER!r}]"
    record["x_kind"] = kind
    if kind == "log_normalized":
        note = "X: log-normalised in the file, kept as is"
        if (
            COUNTS_LAYER not in adata.layers
            and normalize
            and _counts_from_raw(adata, original_names)
        ):
            note += f"; integer counts from adata.raw put in layers[{COUNTS_LAYER!r}]"
        record.setdefault(
            "normalization", {"method": "as_provided", "note": "X was log-normalised in the source"}
        )
        return note
    return f"X: {kind}"


def _labels(value: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    """``control_label=`` as given: one label, or several as a tuple."""
    return value if value is None or isinstance(value, str) else tuple(str(v) for v in value)


def _summary(record: dict[str, str], x_note: str) -> str:
    parts = [f"perturbation from obs[{record['perturbation_key']!r}]"]
    parts.append(f"control label {record['control_label']!r}")
    if "context_key" in record:
        parts.append(f"context from obs[{record['context_key']!r}]")
    else:
        hint = " (pass context='...' to name it)" if record["context"] == DEFAULT_CONTEXT else ""
        parts.append(f"context {record['context']!r} for every cell{hint}")
    for key in ("batch", "dose", "time", "perturbation_type"):
        if f"{key}_key" in record:
            parts.append(f"{key} from obs[{record[f'{key}_key']!r}]")
    return f"celltwin: read as convention {record['name']!r}: " + ", ".join(parts) + f". {x_note}"


def _adapt(
    adata: AnnData, *, convention: str, options: Options
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], dict[str, Any]]:
    """Canonical obs and var for ``adata`` (not applied yet), with what was read from where."""
    chosen = resolve_convention(adata.obs, convention, options)
    obs, record = adapt_obs(adata.obs, chosen, options)
    var, var_record = adapt_var(adata.var, gene_symbol_key=options.gene_symbol_key)
    return obs, var, record, var_record


def _apply(
    adata: AnnData,
    adapted: tuple[pd.DataFrame, pd.DataFrame, dict[str, str], dict[str, Any]],
    *,
    normalize: bool,
) -> None:
    """Make ``adata`` canonical in place with the adapted obs and var (X only when ``normalize``)."""
    obs, var, record, var_record = adapted
    original_names = adata.var_names.copy()
    adata.obs = obs
    adata.var = var
    uns = dict(adata.uns.get(UNS_KEY, {}))
    uns["convention"] = record
    if var_record:
        uns["genes"] = var_record
    adata.uns[UNS_KEY] = uns
    x_note = _prepare_x(adata, normalize=normalize, original_names=original_names)
    problems = canonical_problems(adata, counts_ok=not normalize)
    raise_if_errors(problems)
    for problem in problems:
        logger.warning("celltwin: %s", problem.message)
    logger.info(_summary(record, x_note))


def to_canonical(
    adata: AnnData,
    *,
    convention: str = "auto",
    perturbation_key: str | None = None,
    control_label: str | Sequence[str] | None = None,
    context_key: str | None = None,
    context: str | None = None,
    perturbation_type: str | None = None,
    batch_key: str | None = None,
    dose_key: str | None = None,
    time_key: str | None = None,
    gene_symbol_key: str | None = None,
    gene_key: str | Mapping[str, str] | None = None,
) -> AnnData:
    """Return a canonical copy of ``adata`` (the input is not changed).

    Parameters
    ----------
    adata
        Cells x genes in any registered convention (see :data:`CONVENTIONS`).
    convention
        ``"auto"`` (detect), or a registered name: ``celltwin``, ``vcc``, ``gears``,
        ``scperturb``, ``scgen``, ``columns``.
    perturbation_key
        obs column with the perturbation labels (overrides the convention's; with
        ``convention="auto"`` and no convention using that column, ``columns`` is used).
    control_label
        Label of control cells in that column (default: the convention's, e.g. ``non-targeting``),
        or a list of labels (every non-targeting guide of a guide-level screen).
    context_key, context
        obs column with the cell type / line, or one context for every cell.
    perturbation_type
        Type of every non-control perturbation (one of ``celltwin._keys.PERTURBATION_TYPES``);
        default: the source's ``perturbation_type`` column, else ``"other"``.
    batch_key, dose_key, time_key
        obs columns with batch, dose (a number, ``"10 nM"`` or ``"0.1+1"``; unit from a
        ``dose_unit`` column, the column name's suffix, else µM) and time (hours).
    gene_symbol_key
        var column with gene symbols, for data whose genes are named by Ensembl IDs.
    gene_key
        For guide-level data (perturbations named by guide: ``STAT1g2``): an obs column, or a
        mapping guide -> gene, giving each guide's target gene. Perturbations then are genes,
        and every guide of a control label's gene (``non-targeting``) is a control.

    Returns
    -------
    AnnData
        Canonical obs columns (originals kept; a changed original is kept as ``<name>_original``),
        var_names unique symbols, X log-normalised with counts in ``layers['counts']``, and
        ``uns['celltwin']['convention']`` naming the convention and the source columns.

    Raises
    ------
    ValidationError
        Naming every problem found, where, and how to fix it.
    """
    options = Options(
        perturbation_key=perturbation_key,
        control_label=_labels(control_label),
        context_key=context_key,
        context=context,
        perturbation_type=perturbation_type,
        batch_key=batch_key,
        dose_key=dose_key,
        time_key=time_key,
        gene_symbol_key=gene_symbol_key,
        gene_key=gene_key,
    )
    # Names are checked before copying, so a problem is reported before any large copy is made.
    adapted = _adapt(adata, convention=convention, options=options)
    out = adata.to_memory() if adata.isbacked else adata.copy()
    _apply(out, adapted, normalize=True)
    return out


def _unreadable(path: Path, err: Exception) -> ValidationError:
    return ValidationError(
        [
            Problem(
                code="unreadable",
                what=f"cannot read the file as h5ad ({type(err).__name__}: {err})",
                where=str(path),
                fix="check that it is an .h5ad file written by anndata (from R, convert with "
                "zellkonverter or SeuratDisk) and that it is complete",
            )
        ]
    )


def open_h5ad(path: Path, *, backed: bool) -> AnnData:
    """Open an ``.h5ad`` quietly; an unreadable file raises a clear error."""
    try:
        with warnings.catch_warnings():
            # anndata upgrading an old file on the fly is not something the user can act on.
            warnings.simplefilter("ignore", ad.OldFormatWarning)
            warnings.filterwarnings("ignore", message="Moving element from", category=FutureWarning)
            # Duplicated gene names are reported by celltwin's own check, with the fix.
            warnings.filterwarnings(
                "ignore", message=".* names are not unique", category=UserWarning
            )
            adata = ad.read_h5ad(path, backed="r" if backed else None)
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise _unreadable(path, err) from None
    return adata


def read(
    path: str | os.PathLike[str],
    *,
    convention: str = "auto",
    perturbation_key: str | None = None,
    control_label: str | Sequence[str] | None = None,
    context_key: str | None = None,
    context: str | None = None,
    perturbation_type: str | None = None,
    batch_key: str | None = None,
    dose_key: str | None = None,
    time_key: str | None = None,
    gene_symbol_key: str | None = None,
    gene_key: str | Mapping[str, str] | None = None,
    backed: bool = False,
) -> AnnData:
    """Read an ``.h5ad`` file in any registered convention as canonical celltwin data.

    Which convention was used, and which columns, is logged (logger ``celltwin``, level INFO)
    and recorded in ``uns['celltwin']['convention']``. Options are those of :func:`to_canonical`.

    Parameters
    ----------
    path
        An ``.h5ad`` file.
    backed
        Open X on disk (``backed='r'``): obs and var are made canonical, X is left as it is
        (counts are not normalised; load the data with ``adata.to_memory()`` to work on it).

    Examples
    --------
    >>> adata = celltwin.io.read("papalexi.h5ad")  # doctest: +SKIP
    >>> adata.uns["celltwin"]["convention"]["perturbation_key"]  # doctest: +SKIP
    'target_gene_max'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix != ".h5ad":
        raise ValidationError(
            [
                Problem(
                    code="not_h5ad",
                    what="celltwin.io.read reads .h5ad files",
                    where=str(path),
                    fix="convert the data to .h5ad with anndata (e.g. scanpy.read_10x_h5(...)"
                    ".write_h5ad(...)) and read that",
                )
            ]
        )
    adata = open_h5ad(path, backed=backed)
    options = Options(
        perturbation_key=perturbation_key,
        control_label=_labels(control_label),
        context_key=context_key,
        context=context,
        perturbation_type=perturbation_type,
        batch_key=batch_key,
        dose_key=dose_key,
        time_key=time_key,
        gene_symbol_key=gene_symbol_key,
        gene_key=gene_key,
    )
    _apply(adata, _adapt(adata, convention=convention, options=options), normalize=not backed)
    return adata


def detect_convention(adata: AnnData) -> str:
    """Name the registered convention ``adata`` follows (the best-scoring one).

    Raises
    ------
    ValidationError
        When none fits; the message lists the obs columns seen and the options to pass.
    """
    return resolve_convention(adata.obs, "auto", Options()).name


def _require_canonical(adata: AnnData) -> None:
    if not is_canonical(adata):
        raise_if_errors(p for p in canonical_problems(adata) if p.code == "not_canonical")


def from_canonical(adata: AnnData, *, convention: str) -> AnnData:
    """Return a copy of canonical ``adata`` laid out in another convention.

    ``vcc``: obs ``target_gene`` (controls ``non-targeting``), ``cell_type``, ``batch``.
    ``gears``: obs ``condition`` (``A+ctrl``, ``A+B``, ``ctrl``), ``cell_type``; var ``gene_name``.
    ``scperturb``: obs ``perturbation`` (``control``), ``perturbation_type``, ``celltype``,
    ``dose_value`` + ``dose_unit`` (µM), ``time``. ``scgen``: obs ``condition``, ``cell_type``.
    Other obs columns are kept.
    """
    writable = [name for name, conv in CONVENTIONS.items() if conv.write is not None]
    writer = CONVENTIONS[convention].write if convention in CONVENTIONS else None
    if writer is None:
        raise ValidationError(
            [
                Problem(
                    code="not_writable",
                    what=f"cannot write convention {convention!r}",
                    where="convention=",
                    fix=f"use one of {', '.join(map(repr, writable))}",
                )
            ]
        )
    _require_canonical(adata)
    return writer(adata)


def write(adata: AnnData, path: str | os.PathLike[str], *, convention: str = "celltwin") -> Path:
    """Write canonical ``adata`` to ``path`` (``.h5ad``) in the given convention.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    if path.suffix != ".h5ad":
        raise ValidationError(
            [
                Problem(
                    code="not_h5ad",
                    what="celltwin.io.write writes .h5ad files",
                    where=str(path),
                    fix="give a path ending in .h5ad",
                )
            ]
        )
    _require_canonical(adata)
    # Canonical data is written as it is (no copy); other conventions need a relabelled copy.
    out = adata if convention == "celltwin" else from_canonical(adata, convention=convention)
    out.write_h5ad(path)
    return path
