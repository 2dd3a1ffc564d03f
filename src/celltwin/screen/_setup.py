"""What a screen checks and settles before its first batch: arguments, genes, drug library."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ._candidates import Candidates

logger = logging.getLogger("celltwin")


def check_arguments(
    model: Any,
    candidates: Any,
    objective: Any,
    context: Any,
    numbers: dict[str, Any],
    time_budget: Any,
) -> None:
    """Refuse bad arguments with a message naming the argument, the value and the fix."""
    if not isinstance(candidates, Candidates):
        raise TypeError(
            f"'candidates' must be Candidates (got {type(candidates).__name__}). Fix: build "
            "them with celltwin.screen.genes([...]), pairs, drugs, measured or cmap."
        )
    if len(candidates) == 0:
        raise ValueError("'candidates' is empty: nothing to screen.")
    for attr in ("name", "direction", "score", "pvalues"):
        if not hasattr(objective, attr):
            raise TypeError(
                f"'objective' lacks {attr!r} (got {type(objective).__name__}). Fix: e.g. "
                "celltwin.screen.get_objective('reverse', query=...)."
            )
    if objective.direction not in ("higher", "lower"):
        raise ValueError(
            f"objective.direction must be 'higher' or 'lower' (got {objective.direction!r})"
        )
    if not isinstance(context, str) or not context:
        raise ValueError(
            f"'context' must be a non-empty string (got {context!r}). Fix: e.g. context='K562'."
        )
    for name, value in numbers.items():
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ValueError(f"'{name}' must be an integer >= 1 (got {value!r})")
    if time_budget is not None and not (isinstance(time_budget, int | float) and time_budget > 0):
        raise ValueError(f"'time_budget' must be seconds > 0 or None (got {time_budget!r})")
    predicted = int((candidates.table["kind"] == "predicted").sum())
    if model is None and predicted:
        raise ValueError(
            f"{predicted} candidates are to be predicted but 'model' is None. Fix: pass a "
            "fitted model (celltwin.models.load(path)), or screen measured profiles only."
        )


def screen_genes(model: Any, candidates: Candidates) -> tuple[list[str], str]:
    """The genes every candidate is scored on, and a note when measured profiles narrow them.

    The model's genes; with measured profiles, those the model and every profile share
    (measured-only screens without a model: the genes every profile has).
    """
    own = [str(g) for g in getattr(model, "genes_", [])] if model is not None else []
    profiles = candidates.profiles
    if profiles is None or profiles.n_obs == 0:
        if not own:
            raise ValueError("the model has no genes (genes_): is it fitted?")
        return own, ""
    x = np.asarray(profiles.X, dtype=float)
    complete = pd.Index(profiles.var_names)[np.isfinite(x).all(axis=0)]
    shared = [g for g in own if g in set(complete)] if own else list(complete)
    if not shared:
        raise ValueError(
            "the measured profiles share no gene with the model (every profile must have a "
            "value for a gene to be scored on it). Fix: use profiles measured on the model's "
            "genes (gene symbols, matched by name)."
        )
    base = f"{len(own)} model genes" if own else f"{profiles.n_vars} profile genes"
    note = (
        f"scored on the {len(shared)} of {base} that every measured profile has "
        f"({profiles.n_obs} profiles), so predicted and measured scores are comparable"
    )
    logger.info("screen: %s", note)
    return shared, note


def add_drugs(model: Any, table: pd.DataFrame) -> list[str]:
    """Give a model fitted with drug fingerprints the fingerprints of the library's drugs (in
    place); returns notes when the library cannot be used."""
    rows = table[(table["kind"] == "predicted") & (table["smiles"] != "")]
    if len(rows) == 0 or model is None:
        return []
    add = getattr(model, "add_perturbation_features", None)
    if not callable(add):
        return [f"{getattr(model, 'name', 'the model')} takes no drug features; drugs it "
                "never saw are refused"]  # fmt: skip
    from ..priors import drug_embedding

    library = dict(zip(rows["perturbation"], rows["smiles"], strict=True))
    try:
        add(drug_embedding(library))
    except ValueError as err:
        logger.warning("screen: drug library not used: %s", err)
        return [f"drug library not used: {err}"]
    return []


def model_params(model: Any) -> Any:
    """A model's parameters for the checkpoint's fingerprint (``None`` without)."""
    get = getattr(model, "get_params", None)
    return get() if callable(get) else None
