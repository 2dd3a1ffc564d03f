"""Where each answer of ``transition`` comes from, and why a condition it cannot answer is refused.

Three small decisions, kept apart from the estimator so that other per-condition annotations
(e.g. how far a query is from the training data) can sit beside them:

- :func:`resolve_gene_prior`: which gene features a fit uses (``gene_prior="auto"``);
- :func:`prediction_source`: the user-facing source of an estimate
  (:data:`celltwin._keys.PREDICTION_SOURCES`);
- :func:`refusal`: the reason (and a suggestion) for a condition that has no estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from ..._keys import COMBO_SEP, CONTEXT, DOSE, PERTURBATION, split_combination
from .._conditions import ConditionKey

#: The prior embedding ``gene_prior="auto"`` uses when the priors are here and cover the data.
AUTO_GENE_PRIOR = "go+string"

#: Columns of a refusals table (:attr:`UnpredictableConditionsError.refusals`).
REFUSAL_COLUMNS = ("condition", CONTEXT, PERTURBATION, DOSE, "reason", "suggestion")

_VIEW_SOURCE = {
    "own": "measured",
    "context": "transferred",
    "dose": "transferred",
    "combination": "composed",
    "features": "prior",
}


def resolve_gene_prior(gene_prior: str, components: Iterable[str]) -> str:
    """The gene feature source a fit uses: ``gene_prior`` itself, or for ``"auto"``
    :data:`AUTO_GENE_PRIOR` when its prior files are here and at least half the training
    components are symbols they know (real genes), else ``"data"`` (simulated or unannotated
    gene names: a prior would give them no features)."""
    if gene_prior != "auto":
        return gene_prior
    from ...priors import gene_symbols, priors_available

    parts = AUTO_GENE_PRIOR.split(COMBO_SEP)
    if not priors_available(*parts):
        return "data"
    return AUTO_GENE_PRIOR if _mostly_known(components, gene_symbols(parts)) else "data"


def _mostly_known(names: Iterable[str], symbols: pd.Index) -> bool:
    """Whether at least half of ``names`` (and at least one) are in ``symbols``."""
    listed = list(names)
    return bool(listed) and 2 * sum(n in symbols for n in listed) >= len(listed)


def prediction_source(view: str | None, feature_source: str) -> str:
    """The :data:`~celltwin._keys.PREDICTION_SOURCES` value of an estimate from ``view``
    (``None``: a control condition); features derived from the data are ``features``."""
    if view is None:
        return "control"
    if view == "features" and feature_source == "data":
        return "features"
    return _VIEW_SOURCE[view]


def condition_text(key: ConditionKey) -> str:
    """``context:perturbation[:dose]``, as the command line writes a condition."""
    return ":".join(key if key[2] else key[:2])


def refusal(
    key: ConditionKey,
    *,
    measured: set[str],
    featured: set[str],
    feature_source: str,
    genetic: bool,
) -> tuple[str, str]:
    """``(reason, suggestion)`` for a condition that has no estimate.

    ``measured``: components measured in training; ``featured``: components with feature rows.
    Gene names are checked against the prior symbol table when the priors are here, so a typo
    ("not a known gene symbol", with a "did you mean") is told apart from a real gene that has
    no features.
    """
    missing = [p for p in split_combination(key[1]) if p not in measured and p not in featured]
    if not missing:
        return (
            "its parts were measured, but not so that they can be combined in this context",
            "",
        )
    if genetic:
        answer = _gene_refusal(missing, measured, feature_source)
        if answer is not None:
            return answer
    kind = "gene" if genetic else "perturbation"
    fix = (
        "fit with gene_prior='go+string' (--gene-prior go+string)"
        if genetic
        else "give its SMILES in a drug library (--drugs FILE)"
    )
    return (
        f"never measured, and no features for {missing} (feature source {feature_source!r})",
        f"{fix} for features of an unmeasured {kind}",
    )


def _gene_refusal(
    missing: Sequence[str], measured: Iterable[str], feature_source: str
) -> tuple[str, str] | None:
    """The refusal of unmeasured genes without features, when the symbol table can tell (the
    priors are here and the training targets are real gene symbols, not simulated names)."""
    from ...priors import gene_symbols, priors_available, resolve_genes

    if not priors_available("go", "string", "dorothea", "progeny"):
        return None
    symbols = gene_symbols()
    if not _mostly_known(measured, symbols):
        return None
    table = resolve_genes(missing, symbols=symbols)
    for row in table.itertuples(index=False):
        if row.status == "unknown":
            hint = f"did you mean {row.suggestion.split(';')[0]}?" if row.suggestion else ""
            return f"{row.query!r} is not a known gene symbol", hint
        if row.status != "exact":
            return (
                f"{row.query!r} is not a known gene symbol as written",
                f"did you mean {row.symbol}?",
            )
    if feature_source in ("data", "none"):
        return None
    return (
        f"no prior features for {list(missing)} (known symbols, but not in the "
        f"{feature_source!r} features)",
        "measure it, or pass perturbation_features with a row for it",
    )


def refusals_table(rows: Sequence[tuple[ConditionKey, str, str]]) -> pd.DataFrame:
    """A refusals table (:data:`REFUSAL_COLUMNS`) from ``(key, reason, suggestion)`` rows."""
    return pd.DataFrame(
        [(condition_text(k), *k, reason, hint) for k, reason, hint in rows],
        columns=list(REFUSAL_COLUMNS),
    )
