"""Prior knowledge: GO, STRING, DoRothEA, PROGENy, gene sets, and embeddings built from them."""

from ._embed import GENE_EMBEDDING_SOURCES, drug_embedding, gene_embedding, read_smiles
from ._read import read_dorothea, read_gene_sets, read_go, read_progeny, read_string

__all__ = [
    "GENE_EMBEDDING_SOURCES",
    "drug_embedding",
    "gene_embedding",
    "read_dorothea",
    "read_gene_sets",
    "read_go",
    "read_progeny",
    "read_smiles",
    "read_string",
]
