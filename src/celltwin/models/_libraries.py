"""Features of perturbations by name for :func:`celltwin.models.fit` / :func:`predict`: a gene
prior (``gene_prior=``) and a drug library (``drugs=``, a CSV of name,SMILES)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ._cell import CellModel
from ._params import fit_arguments, init_param_names
from ._registry import get_spec


def perturbation_inputs(
    model: str,
    params: Mapping[str, Any] | None,
    *,
    gene_prior: str | None,
    drugs: str | os.PathLike[str] | None,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """The constructor parameters and ``perturbation_features`` of registered ``model`` given
    a gene prior and a drug library (each ``None`` when not given)."""
    cls = get_spec(model).cls
    given = dict(params or {})
    takes_features = "perturbation_features" in fit_arguments(cls)
    features = None
    if gene_prior is not None:
        if "gene_prior" in given:
            raise ValueError(
                "params holds 'gene_prior' and gene_prior= is given too. Fix: pass it once "
                "(gene_prior=..., --gene-prior on the command line)."
            )
        if "gene_prior" in init_param_names(cls):
            given["gene_prior"] = gene_prior
        elif takes_features:
            from ..priors import gene_embedding

            features = gene_embedding(gene_prior)
        else:
            raise ValueError(
                f"model {model!r} takes no gene features. Fix: drop gene_prior= "
                "(--gene-prior), or use 'transition', 'linear' or 'nearest_perturbation'."
            )
    if drugs is not None:
        if not takes_features:
            raise ValueError(
                f"model {model!r} takes no perturbation features, so a drug library cannot be "
                "used. Fix: drop drugs= (--drugs), or use model 'transition' or 'linear'."
            )
        if features is not None:
            raise ValueError(
                f"model {model!r} takes one feature table: a gene prior or a drug library, "
                "not both. Fix: drop one of gene_prior= and drugs=."
            )
        features = fingerprints(drugs)
    return given, features


def fingerprints(drugs: str | os.PathLike[str]) -> pd.DataFrame:
    """Morgan fingerprints of the drugs of a ``name,SMILES`` library file."""
    from ..priors import drug_embedding, read_smiles

    if not Path(drugs).is_file():
        raise FileNotFoundError(
            f"drug library {str(drugs)!r} not found. Fix: a CSV of name,SMILES (--drugs FILE)."
        )
    table = drug_embedding(read_smiles(Path(drugs)))
    if len(table) == 0:
        raise ValueError(
            f"drug library {str(drugs)!r}: no SMILES could be parsed. Fix: a headerless CSV "
            "of name,SMILES rows."
        )
    return table


def add_drugs(model: CellModel, drugs: str | os.PathLike[str]) -> None:
    """Give a fitted model the fingerprints of the drugs in ``drugs`` it does not have yet."""
    add = getattr(model, "add_perturbation_features", None)
    if add is None:
        raise ValueError(
            f"model {model.name!r} takes no features at predict time. Fix: drop drugs= "
            "(--drugs), or fit with the drug library (celltwin fit --drugs FILE)."
        )
    add(fingerprints(drugs))
