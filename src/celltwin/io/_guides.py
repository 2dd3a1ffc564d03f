"""Guide-level data: perturbations named by guide (``STAT1g2``, ``NTg3``) instead of by gene.

CRISPR screens often record the guide each cell received. Read as perturbations, guides make every
guide its own "gene" (``STAT1g2`` is not a gene) and every non-targeting guide but the one named as
control a knockout. :func:`guide_problems` detects this (several control-like labels, guide-like
IDs whose stem is a gene, an obs column that maps guides to genes); :func:`map_guides` fixes it by
reading each guide's target gene (``gene_key=``, ``--guide-to-gene``) so that perturbations are
genes and every control guide is a control.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from .._keys import (
    BATCH,
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    DOSE,
    DRUG,
    PERTURBATION,
    PERTURBATION_TYPE,
    TIME,
)
from ._conventions import CONTROL_LABELS, Options
from ._problems import Problem, preview

#: Labels of control guides: short prefixes need a number (NTg1, NTC_2), long ones any suffix.
_SHORT_CONTROL = r"(?:NTC?|ctrl|control)[-_.]?(?:sg|g|gRNA|guide)?[-_.]?\d+"
_LONG_CONTROL = r"(?:non[-_ ]?targeting|safe[-_ ]?targeting|negative[-_ ]?control|scrambled?)"
CONTROL_LIKE = re.compile(rf"^(?:{_SHORT_CONTROL}|{_LONG_CONTROL}(?:[-_.\s].+|\d+))$", re.I)
#: Guide IDs: a gene with a guide suffix (GENEg2, GENE_1, GENE-sg3) and/or an sg/sh prefix.
_PREFIX = r"(?:sg|sh)(?=[A-Z0-9])"
_SUFFIX = r"(?:[-_.](?:sg|g|gRNA|guide|sh)?|(?:sg|g|gRNA|guide|sh)[-_.]?)\d+"
_GUIDE = re.compile(rf"^(?:{_PREFIX})?(?P<gene>[A-Za-z0-9][A-Za-z0-9.\-]*?){_SUFFIX}$")
_PREFIXED = re.compile(rf"^{_PREFIX}(?P<gene>[A-Za-z0-9][A-Za-z0-9.\-]*)$")
#: Values a guide-to-gene column gives control guides.
_CONTROL_WORDS = {c.lower() for c in CONTROL_LABELS}
#: Canonical columns, never taken for a guide-to-gene column.
_CANONICAL = {PERTURBATION, PERTURBATION_TYPE, CONTEXT, BATCH, DOSE, TIME}


def guide_stem(label: str) -> str | None:
    """The gene a guide-like ID names (``STAT1g2``, ``sgSTAT1-2`` -> ``STAT1``), else ``None``."""
    match = _GUIDE.match(label) or _PREFIXED.match(label)
    return match.group("gene") if match else None


def guide_like(labels: Iterable[str], genes: Iterable[str]) -> dict[str, str]:
    """Labels that look like guides of a gene, with that gene.

    A label counts when stripping its guide suffix (or prefix) leaves a gene present in
    ``genes`` or a stem shared by several labels (``STAT1g1``, ``STAT1g2``).
    """
    stems = {label: guide_stem(label) for label in labels}
    found = {label: stem for label, stem in stems.items() if stem}
    shared = pd.Series(list(found.values()), dtype=object).value_counts()
    known = set(genes)
    return {
        label: stem
        for label, stem in found.items()
        if stem in known or int(shared.get(stem, 0)) > 1
    }


def _gene_column(
    obs: pd.DataFrame, labels: pd.Series, stems: Mapping[str, str], controls: list[str]
) -> str | None:
    """An obs column naming each label's gene: one value per label, agreeing with the stems
    of guides and giving control guides a control label (``non-targeting``)."""
    n_labels = labels.nunique()
    best, best_score = None, 0.5
    for column in obs.columns:
        series = obs[column]
        if column in _CANONICAL or not (
            series.dtype == object or isinstance(series.dtype, pd.CategoricalDtype)
        ):
            continue
        pairs = pd.DataFrame({"label": labels.to_numpy(), "gene": series.astype(str).to_numpy()})
        per_label = pairs.drop_duplicates()
        if len(per_label) != n_labels or not 2 <= per_label["gene"].nunique() < n_labels:
            continue
        mapping = dict(zip(per_label["label"], per_label["gene"], strict=True))
        agree = [mapping.get(label) == stem for label, stem in stems.items()]
        agree += [str(mapping.get(label)).lower() in _CONTROL_WORDS for label in controls]
        score = np.mean(agree or [0.0])
        if score > best_score:
            best, best_score = str(column), float(score)
    return best


def guide_problems(
    obs: pd.DataFrame,
    genes: Iterable[str],
    *,
    control_labels: Iterable[str] = (),
    source_key: str = PERTURBATION,
) -> list[Problem]:
    """Problems of data whose perturbations are guides rather than genes (canonical obs).

    Parameters
    ----------
    obs
        Canonical obs (source columns kept, as :func:`celltwin.io.read` leaves them).
    genes
        The gene symbols measured (var_names).
    control_labels
        The source labels read as control (for the fix's ``--control-label`` list).
    source_key
        The source column the perturbations were read from (named in the messages).
    """
    if PERTURBATION not in obs.columns:
        return []
    perturbations = obs[PERTURBATION].astype(str)
    genetic = perturbations != CONTROL
    if PERTURBATION_TYPE in obs.columns:
        genetic &= obs[PERTURBATION_TYPE].astype(str) != DRUG
    labels = sorted(p for p in set(perturbations[genetic]) if COMBO_SEP not in p)
    controls = [p for p in labels if CONTROL_LIKE.match(p)]
    guides = guide_like([p for p in labels if p not in set(controls)], genes)
    is_guides = len(guides) >= 2 and len(guides) >= 0.5 * (len(labels) - len(controls))
    if not controls and not is_guides:
        return []
    column = _gene_column(obs.loc[genetic], perturbations[genetic], guides, controls)
    map_fix = (
        f"map guides to their genes: --guide-to-gene {column} (Python: gene_key={column!r})"
        if column
        else "map guides to their genes: --guide-to-gene COLUMN, an obs column naming each "
        "guide's gene (Python: gene_key= a column or a dict guide -> gene)"
    )
    where = f"obs[{source_key!r}] values"
    problems = []
    if controls:
        given = [str(c) for c in control_labels if str(c) != CONTROL]
        problems.append(_control_problem(controls, given, map_fix, where))
    if is_guides:
        problems.append(_guide_problem(guides, len(labels), map_fix, where))
    return problems


def _control_problem(controls: list[str], given: list[str], map_fix: str, where: str) -> Problem:
    return Problem(
        code="control_like_perturbations",
        what=f"{len(controls)} perturbation label(s) look like control guides, so their cells "
        "would be read as perturbed, not as controls",
        where=f"{where} {preview(controls)}",
        fix=f"{map_fix}; or name every control label: --control-label "
        f"{','.join([*given, *controls])} (Python: control_label=[...])",
    )


def _guide_problem(guides: dict[str, str], n_labels: int, map_fix: str, where: str) -> Problem:
    guide, gene = next(iter(guides.items()))
    return Problem(
        code="guide_level",
        what=f"the perturbations are guide IDs, not genes ({len(guides)} of {n_labels}, e.g. "
        f"{guide!r} targets {gene}): each guide would be its own perturbation, named as if it "
        "were a gene",
        where=f"{where} {preview(list(guides))}",
        fix=map_fix + ", or read a gene-level column with --perturbation-key",
    )


# --- the fix: guides mapped to genes -----------------------------------------------------------


def control_label_list(value: str | Iterable[str] | None) -> list[str]:
    """``control_label=`` as a list of labels (one string is one label)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _gene_of(obs: pd.DataFrame, key: str, gene_key: str | Mapping[str, str]) -> pd.Series | Problem:
    """Each cell's gene, from an obs column or a guide -> gene mapping."""
    guides = obs[key].astype(str)
    if isinstance(gene_key, str):
        if gene_key not in obs.columns:
            return Problem(
                code="missing_column",
                what=f"--guide-to-gene {gene_key!r} is not an obs column",
                where=f"obs columns: {preview([str(c) for c in obs.columns], limit=20)}",
                fix="pass the obs column naming each guide's gene (Python: gene_key=)",
            )
        return obs[gene_key].astype(object).where(obs[gene_key].notna(), None)
    return guides.map(dict(gene_key)).astype(object)


def map_guides(
    obs: pd.DataFrame, key: str | None, options: Options
) -> tuple[pd.DataFrame, Options, list[Problem]]:
    """Replace guides by their target genes in ``obs[key]`` (``options.gene_key``).

    Control guides (``options.control_label``) stay as they are; the genes they map to (e.g.
    ``non-targeting``) become control labels too, so every control guide is a control. Returns
    the obs to read from, the options to read with, and the problems met.
    """
    if options.gene_key is None or key is None or key not in obs.columns:
        return obs, options, []
    genes = _gene_of(obs, key, options.gene_key)
    if isinstance(genes, Problem):
        return obs, options, [genes]
    guides = obs[key].astype(str)
    controls = control_label_list(options.control_label)
    is_control = guides.isin(controls).to_numpy()
    problems = []
    missing = genes.isna().to_numpy() & ~is_control
    if missing.any():
        problems.append(
            Problem(
                code="unmapped_guides",
                what=f"{int(missing.sum())} cell(s) have a guide with no gene",
                where=f"guides {preview(sorted(set(guides[missing])))}",
                fix="give every guide its gene in --guide-to-gene (Python: gene_key=), or "
                "name control guides with --control-label",
            )
        )
    pairs = pd.DataFrame({"guide": guides, "gene": genes.astype(str)})[~missing].drop_duplicates()
    ambiguous = sorted(set(pairs.loc[pairs["guide"].duplicated(), "guide"]))
    if ambiguous:
        problems.append(
            Problem(
                code="guide_gene_ambiguous",
                what=f"{len(ambiguous)} guide(s) map to more than one gene",
                where=f"guides {preview(ambiguous)}",
                fix="pass a column (or mapping) that gives one gene per guide",
            )
        )
    labels = np.where(is_control | missing, guides.to_numpy(), genes.astype(str).to_numpy())
    mapped = obs.copy()
    mapped[key] = pd.Categorical(labels)
    control_genes = sorted(set(genes[is_control].dropna().astype(str)))
    if controls:
        options = replace(options, control_label=tuple([*controls, *control_genes]))
    return mapped, options, problems
