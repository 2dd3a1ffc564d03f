"""Prior knowledge: GO, STRING, DoRothEA, PROGENy, gene sets, and embeddings built from them."""

from ._embed import GENE_EMBEDDING_SOURCES, drug_embedding, gene_embedding, read_smiles
from ._files import PRIOR_FILES, PRIORS_BASE_URL, PriorFile, prior_path, priors_available
from ._read import read_dorothea, read_gene_sets, read_go, read_progeny, read_string
from ._symbols import RESOLUTION_STATUS, gene_symbols, resolve_genes

__all__ = [
    "GENE_EMBEDDING_SOURCES",
    "PRIORS_BASE_URL",
    "PRIOR_FILES",
    "RESOLUTION_STATUS",
    "PriorFile",
    "drug_embedding",
    "gene_embedding",
    "gene_symbols",
    "prior_path",
    "priors_available",
    "read_dorothea",
    "read_gene_sets",
    "read_go",
    "read_progeny",
    "read_smiles",
    "read_string",
    "resolve_genes",
]
