"""Prior features of perturbations for the signature models: gene embeddings, drug fingerprints."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Final

import numpy as np
import pandas as pd

from .._keys import split_combination

#: Values of :class:`SignatureFactor`'s ``prior`` parameter.
PRIORS: Final = ("auto", "gene", "drug", "none")
#: Gene-embedding sources of the ``gene`` prior (:func:`celltwin.priors.gene_embedding`).
GENE_PRIOR_SOURCE: Final = "go+string"
#: Dimensions the drug fingerprints are reduced to (SVD over the training perturbations).
DRUG_PRIOR_DIM: Final = 32
_SALTS = re.compile(
    r"\s+(hcl|2hcl|hydrochloride|dihydrochloride|bromide|sodium|calcium|mesylate|maleate|"
    r"tosylate|citrate|sulfate|acetate|phosphate)$",
    re.IGNORECASE,
)


@cache
def _gene_prior_table() -> pd.DataFrame:
    """The gene embedding used as prior (computed once per process; never mutate it)."""
    from ..priors import gene_embedding

    return gene_embedding(GENE_PRIOR_SOURCE)


@cache
def _gene_symbols() -> frozenset[str]:
    """Genes the gene prior knows (read cheaply, before the embedding is computed)."""
    from ..priors import read_go, read_string

    string = read_string()
    return frozenset(read_go()["gene"]) | frozenset(string["gene_a"]) | frozenset(string["gene_b"])


@cache
def _smiles_index() -> dict[str, str]:
    """Normalised drug name -> SMILES from the shared sci-Plex drug table."""
    from ..priors import read_smiles

    return {_norm(name): smi for name, smi in read_smiles().items()}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _name_variants(name: str) -> list[str]:
    """A drug label and its likely aliases: ``"Belinostat (PXD101)"`` -> both names, salts cut."""
    out = [name]
    match = re.match(r"^(.*?)\s*\((.*)\)\s*(.*)$", name)
    if match:
        out += [match.group(1), match.group(2), f"{match.group(1)} {match.group(3)}"]
    out += [_SALTS.sub("", v) for v in list(out)]
    return [_norm(v) for v in out if v.strip()]


def _gene_features(perturbations: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean gene embedding of each perturbation's components; coverage mask."""
    table = _gene_prior_table()
    out = np.zeros((len(perturbations), table.shape[1]))
    has = np.zeros(len(perturbations), dtype=bool)
    for i, pert in enumerate(perturbations):
        known = [g for g in split_combination(pert) if g in table.index]
        if known:
            out[i] = table.loc[known].to_numpy(dtype=np.float64).mean(axis=0)
            has[i] = True
    return out, has


def _drug_features(perturbations: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Morgan fingerprints (mean over components) reduced by SVD; coverage mask."""
    from ..priors import drug_embedding

    index = _smiles_index()
    smiles: dict[str, str] = {}
    for pert in perturbations:
        for part in split_combination(pert):
            hit = next((index[v] for v in _name_variants(part) if v in index), None)
            if hit is not None:
                smiles[part] = hit
    fps = drug_embedding(smiles) if smiles else pd.DataFrame()
    raw = np.zeros((len(perturbations), fps.shape[1] if len(fps) else 1))
    has = np.zeros(len(perturbations), dtype=bool)
    for i, pert in enumerate(perturbations):
        known = [d for d in split_combination(pert) if d in fps.index]
        if known:
            raw[i] = fps.loc[known].to_numpy(dtype=np.float64).mean(axis=0)
            has[i] = True
    if has.sum() < 2:
        return np.zeros((len(perturbations), 0)), np.zeros(len(perturbations), dtype=bool)
    centred = np.where(has[:, None], raw - raw[has].mean(axis=0), 0.0)
    u, s, _ = np.linalg.svd(centred[has], full_matrices=False)
    k = min(DRUG_PRIOR_DIM, int((s > 1e-9 * s[0]).sum()))
    out = np.zeros((len(perturbations), k))
    out[has] = u[:, :k] * s[:k]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out, has


_PRIOR_FEATURES = {"gene": _gene_features, "drug": _drug_features}


def prior_features(
    perturbations: Sequence[str], *, prior: str = "auto"
) -> tuple[str, np.ndarray, np.ndarray]:
    """Prior features of perturbation labels: gene embeddings or drug fingerprints.

    Parameters
    ----------
    perturbations
        Perturbation labels (combinations ``A+B`` get the mean over their components).
    prior
        ``"gene"``: :func:`celltwin.priors.gene_embedding` (GO + STRING) of the target genes;
        ``"drug"``: Morgan fingerprints (:func:`celltwin.priors.drug_embedding`) of the drugs
        whose name matches the shared sci-Plex SMILES table, reduced to at most 32 dimensions by
        an SVD over these perturbations; ``"auto"``: ``gene`` when at least half of the labels
        are known genes, else ``drug`` when any drug matches, else ``none`` (also when the
        shared folder is missing); ``"none"``: no features.

    Returns
    -------
    tuple
        ``(source, features, known)``: the source used, ``(perturbations, dims)`` features
        (zeros where unknown) and the mask of perturbations with features.
    """
    if prior not in PRIORS:
        raise ValueError(f"'prior' must be one of {PRIORS} (got {prior!r}).")
    n = len(perturbations)
    empty = ("none", np.zeros((n, 0)), np.zeros(n, dtype=bool))
    if prior == "none":
        return empty
    if prior != "auto":
        features, known = _PRIOR_FEATURES[prior](perturbations)
        return prior, features, known
    try:
        symbols = _gene_symbols()
        genetic = [any(g in symbols for g in split_combination(p)) for p in perturbations]
        if np.mean(genetic) >= 0.5:
            features, known = _gene_features(perturbations)
            return "gene", features, known
        features, known = _drug_features(perturbations)
    except (FileNotFoundError, ImportError):
        return empty  # no shared priors (or no RDKit) here: the model runs without features
    return ("drug", features, known) if known.any() else empty
