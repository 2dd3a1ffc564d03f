"""Prior-knowledge embeddings of genes (GO, STRING, DoRothEA) and drugs (Morgan fingerprints).

Gene embeddings use one recipe for every source, so they are comparable: build a sparse
gene x feature incidence matrix (GO terms; STRING neighbours; DoRothEA regulators), weight it by
TF-IDF so rare, specific features count more than broad ones, L2-normalise rows and take a
truncated SVD (latent semantic analysis). Two genes end up close when they share specific
annotations, neighbours or regulators — the notion of similarity GEARS builds its GO graph from.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._settings import cache_dir, shared_dir
from ._files import prior_path
from ._read import read_dorothea, read_go, read_string


def _incidence(
    rows: Iterable[str], cols: Iterable[str], weights: Iterable[float]
) -> tuple[sp.csr_matrix, pd.Index]:
    r = pd.Categorical(list(rows))
    c = pd.Categorical(list(cols))
    mat = sp.csr_matrix(
        (np.asarray(list(weights), dtype=np.float64), (r.codes, c.codes)),
        shape=(len(r.categories), len(c.categories)),
    )
    mat.sum_duplicates()
    mat.data = np.minimum(mat.data, 1.0)  # repeated evidence for one pair counts once
    return mat, pd.Index(r.categories.astype(str))


def _lsa(mat: sp.csr_matrix, genes: pd.Index, *, n_components: int, seed: int) -> pd.DataFrame:
    from sklearn.utils.extmath import randomized_svd  # heavy: loaded when an embedding is built

    n_docs = np.asarray((mat > 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + mat.shape[0]) / (1.0 + n_docs)) + 1.0
    weighted = sp.csr_matrix(mat @ sp.diags(idf))
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    weighted = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted)
    k = int(min(n_components, min(weighted.shape) - 1))
    if k < 1:
        raise ValueError(f"too few genes or features ({weighted.shape}) for an embedding")
    u, s, _ = randomized_svd(weighted, n_components=k, random_state=seed, n_iter=7)
    emb = u * s
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return pd.DataFrame(emb, index=genes, columns=[f"dim{i}" for i in range(k)])


def _go_incidence() -> tuple[sp.csr_matrix, pd.Index]:
    go = read_go()
    return _incidence(go["gene"], go["go_id"], np.ones(len(go)))


def _string_incidence() -> tuple[sp.csr_matrix, pd.Index]:
    st = read_string()
    # Undirected: each gene's features are its neighbours and itself, weighted by confidence.
    genes = pd.concat([st["gene_a"], st["gene_b"]]).unique()
    a = pd.concat([st["gene_a"], st["gene_b"], pd.Series(genes)])
    b = pd.concat([st["gene_b"], st["gene_a"], pd.Series(genes)])
    w = np.concatenate([st["score"] / 1000.0, st["score"] / 1000.0, np.ones(len(genes))])
    return _incidence(a, b, w)


def _dorothea_incidence() -> tuple[sp.csr_matrix, pd.Index]:
    dor = read_dorothea()
    # Features are regulators: targets share features when co-regulated; a TF belongs to its own
    # regulon so it sits near its targets.
    tfs = dor["tf"].unique()
    rows = pd.concat([dor["target"], pd.Series(tfs)])
    cols = pd.concat([dor["tf"], pd.Series(tfs)])
    return _incidence(rows, cols, np.ones(len(rows)))


def _source_embedding(name: str, *, n_components: int, seed: int) -> pd.DataFrame:
    """The LSA embedding of one source, kept in the download cache (``embeddings/``) under a
    key of the source file's identity (path, size, modification time), the dimensions and the
    seed: building it takes 10-50 s, reading it back well under one."""
    path = prior_path(name)
    stat = path.stat()
    ident = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{n_components}|{seed}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return _cached_embedding(name, n_components, seed, digest)


@cache
def _cached_embedding(name: str, n_components: int, seed: int, digest: str) -> pd.DataFrame:
    stored = cache_dir() / "embeddings" / f"{name}-{n_components}-{seed}-{digest}.npz"
    if stored.is_file():
        with np.load(stored, allow_pickle=False) as npz:
            return pd.DataFrame(
                npz["matrix"],
                index=pd.Index(npz["genes"].astype(str)),
                columns=[f"dim{i}" for i in range(npz["matrix"].shape[1])],
            )
    mat, index = GENE_EMBEDDING_SOURCES[name].incidence()
    emb = _lsa(mat, index, n_components=n_components, seed=seed)
    stored.parent.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_name(f".{stored.stem}.{os.getpid()}.npz")
    np.savez(tmp, matrix=emb.to_numpy(), genes=np.asarray(emb.index, dtype=str))
    os.replace(tmp, stored)
    return emb


@dataclass(frozen=True)
class GeneEmbeddingSource:
    """A registered source of gene embeddings (name, description, incidence builder)."""

    name: str
    description: str
    incidence: Callable[[], tuple[sp.csr_matrix, pd.Index]]


GENE_EMBEDDING_SOURCES: dict[str, GeneEmbeddingSource] = {
    s.name: s
    for s in (
        GeneEmbeddingSource("go", "GO annotations (NCBI gene2go), TF-IDF + SVD", _go_incidence),
        GeneEmbeddingSource(
            "string", "STRING v12 interaction neighbourhoods, TF-IDF + SVD", _string_incidence
        ),
        GeneEmbeddingSource(
            "dorothea", "DoRothEA regulators (A-C), TF-IDF + SVD", _dorothea_incidence
        ),
    )
}


def gene_embedding(
    source: str = "go",
    *,
    genes: Iterable[str] | None = None,
    n_components: int = 64,
    seed: int = 0,
) -> pd.DataFrame:
    """Embed genes from prior knowledge.

    Parameters
    ----------
    source
        ``"go"``, ``"string"`` or ``"dorothea"`` (see :data:`GENE_EMBEDDING_SOURCES`), or several
        joined by ``+`` (``"go+string"``): their embeddings are concatenated, genes missing from
        one source get zeros there.
    genes
        Restrict the result to these genes (genes unknown to the source are left out: check
        ``result.index``).
    n_components
        Dimensions per source.
    seed
        Seed of the randomised SVD.

    Returns
    -------
    DataFrame, genes x dimensions, unit-norm rows per source. Each source's embedding is
    built once and kept in the download cache (``CELLTWIN_CACHE``/embeddings), keyed by its
    file's identity, the dimensions and the seed.
    """
    names = source.split("+")
    unknown = [n for n in names if n not in GENE_EMBEDDING_SOURCES]
    if unknown:
        raise ValueError(
            f"unknown gene embedding source(s) {unknown}; choose from {sorted(GENE_EMBEDDING_SOURCES)}"
        )
    parts = []
    for name in names:
        emb = _source_embedding(name, n_components=n_components, seed=seed)
        parts.append(emb.add_prefix(f"{name}_"))
    out = pd.concat(parts, axis=1, join="outer").fillna(0.0)
    if genes is not None:
        wanted = pd.Index(list(dict.fromkeys(genes)))
        out = out.loc[wanted.intersection(out.index, sort=False)]
    return out


def drug_embedding(
    smiles: Mapping[str, str],
    *,
    radius: int = 2,
    n_bits: int = 2048,
) -> pd.DataFrame:
    """Morgan (ECFP-like) fingerprints of drugs from their SMILES, via RDKit.

    Parameters
    ----------
    smiles
        ``{drug name: SMILES}``; e.g. from ``../shared/data/drugs/sciplex_drugs_smiles.csv``.
    radius
        Morgan radius (2 = ECFP4).
    n_bits
        Fingerprint length.

    Returns
    -------
    DataFrame, drugs x bits (0/1 as float32). Drugs whose SMILES RDKit cannot parse are left
    out, with a logged warning.
    """
    try:
        from rdkit import Chem, RDLogger
        from rdkit.Chem import rdFingerprintGenerator
    except ImportError as err:  # pragma: no cover - depends on the extra
        raise ImportError(
            "drug fingerprints need RDKit: pip install 'celltwin[chem]' (or pip install rdkit)"
        ) from err
    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # rdkit's stubs omit it
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    rows: list[np.ndarray] = []
    names: list[str] = []
    bad: list[str] = []
    for name, smi in smiles.items():
        mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) else None
        if mol is None:
            bad.append(name)
            continue
        rows.append(gen.GetFingerprintAsNumPy(mol).astype(np.float32))
        names.append(name)
    if bad:
        logging.getLogger("celltwin").warning(
            "RDKit could not parse SMILES of %d drugs: %s", len(bad), bad[:10]
        )
    return pd.DataFrame(np.vstack(rows) if rows else np.zeros((0, n_bits), np.float32), index=names)


def read_smiles(path: str | Path | None = None) -> dict[str, str]:
    """Read a headerless ``name,smiles[,pathway]`` CSV (the chemCPA drug tables) into a dict.

    Parameters
    ----------
    path
        Default: ``../shared/data/drugs/sciplex_drugs_smiles.csv``.
    """
    resolved = (
        Path(path) if path is not None else shared_dir() / "data/drugs/sciplex_drugs_smiles.csv"
    )
    df = pd.read_csv(resolved, header=None, dtype=str, skipinitialspace=True)
    return dict(zip(df[0].str.strip(), df[1].str.strip(), strict=True))
