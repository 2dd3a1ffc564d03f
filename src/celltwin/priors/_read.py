"""Readers for the prior-knowledge tables (GO, STRING, DoRothEA, PROGENy, GMT gene sets).

Each reader takes a path (default: the registered file, from the shared folder or the download
cache, see :func:`celltwin.priors.prior_path`) and returns a tidy :class:`pandas.DataFrame` (or a dict of
gene sets), keyed by gene symbol.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._files import prior_path


def _resolve(path: str | Path | None, name: str) -> Path:
    if path is None:
        return prior_path(name)
    resolved = Path(path)
    if not resolved.is_file():
        raise FileNotFoundError(
            f"prior-knowledge file for {name!r} not found at {resolved}. Fix: pass an existing "
            f"`path=`, or leave it out to use the registered file (`celltwin data fetch {name}`)."
        )
    return resolved


def read_go(
    path: str | Path | None = None,
    *,
    ontologies: tuple[str, ...] = ("BP", "MF", "CC"),
    exclude_evidence: tuple[str, ...] = ("ND",),
) -> pd.DataFrame:
    """Gene-to-GO annotations (NCBI gene2go), columns ``gene``, ``go_id``, ``ontology``.

    Parameters
    ----------
    path
        A gene2go-style TSV (columns entrez, symbol, go_id, evidence, ontology).
    ontologies
        GO branches to keep (``BP``, ``MF``, ``CC``).
    exclude_evidence
        Evidence codes to drop; ``ND`` ("no biological data available") carries no information.
    """
    df = pd.read_csv(_resolve(path, "go"), sep="\t", dtype=str)
    df = df[df["ontology"].isin(ontologies) & ~df["evidence"].isin(exclude_evidence)]
    out = df.rename(columns={"symbol": "gene"})[["gene", "go_id", "ontology"]]
    return out.drop_duplicates(["gene", "go_id"]).reset_index(drop=True)


def read_string(path: str | Path | None = None, *, min_score: int = 700) -> pd.DataFrame:
    """STRING protein interactions, columns ``gene_a``, ``gene_b``, ``score`` (0-1000).

    Parameters
    ----------
    path
        STRING edge table with ``symbol_a``, ``symbol_b``, ``combined_score``.
    min_score
        Minimum combined score (700 = STRING's "high confidence").
    """
    df = pd.read_csv(_resolve(path, "string"), sep="\t")
    df = df[df["combined_score"] >= min_score]
    out = df.rename(columns={"symbol_a": "gene_a", "symbol_b": "gene_b", "combined_score": "score"})
    return out[["gene_a", "gene_b", "score"]].reset_index(drop=True)


def read_dorothea(path: str | Path | None = None, *, confidence: str = "ABC") -> pd.DataFrame:
    """DoRothEA TF-target regulons, columns ``tf``, ``target``, ``mor`` (sign), ``confidence``.

    Parameters
    ----------
    path
        DoRothEA table (tf, confidence, target, mor).
    confidence
        Confidence levels to keep (A is the most reliable, E the least).
    """
    df = pd.read_csv(_resolve(path, "dorothea"), sep="\t")
    df = df[df["confidence"].isin(list(confidence))]
    return df[["tf", "target", "mor", "confidence"]].reset_index(drop=True)


def read_progeny(path: str | Path | None = None, *, top: int = 100) -> pd.DataFrame:
    """PROGENy pathway footprints: the ``top`` genes per pathway by p-value.

    Returns columns ``pathway``, ``gene``, ``weight``.
    """
    df = pd.read_csv(_resolve(path, "progeny"), sep="\t")
    df = df.sort_values("p.value").groupby("pathway", sort=True).head(top)
    return df[["pathway", "gene", "weight"]].reset_index(drop=True)


def read_gene_sets(
    path: str | Path | None = None, *, name: str = "hallmark"
) -> dict[str, list[str]]:
    """Read a GMT file (name, description, genes...) into ``{set_name: [genes]}``.

    Parameters
    ----------
    path
        GMT file; default the shared collection called ``name``.
    name
        One of ``hallmark``, ``c2cp``, ``go_bp``, ``kegg`` (used when ``path`` is None).
    """
    sets: dict[str, list[str]] = {}
    with open(_resolve(path, name), encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            genes = [g.split(",")[0] for g in parts[2:] if g]  # Enrichr GMTs may carry ",weight"
            sets[parts[0]] = list(dict.fromkeys(genes))
    return sets
