"""Small generated datasets in each convention, with the canonical truth they should read as."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import (
    BATCH,
    CONTEXT,
    CONTROL,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    TIME,
)
from celltwin._settings import shared_dir

N_GENES = 30
GENES = [f"GENE{i}" for i in range(N_GENES)]
ENSEMBL = [f"ENSG{i:011d}" for i in range(N_GENES)]


def counts_matrix(n_cells: int, *, seed: int = 0) -> sp.csr_matrix:
    """Poisson counts with per-gene means, every cell with at least one count."""
    rng = np.random.default_rng(seed)
    means = rng.gamma(0.8, 2.0, size=N_GENES)
    x = rng.poisson(means, size=(n_cells, N_GENES)).astype(np.float32)
    x[:, 0] += 1  # no empty cell
    return sp.csr_matrix(x)


def truth_genetic(cells_per_condition: int = 6) -> pd.DataFrame:
    """Canonical obs of a genetic screen: 2 contexts, singles, a double, controls, 2 batches."""
    rows = []
    for context in ("K562", "RPE1"):
        for perturbation in (CONTROL, "AAA", "BBB", "AAA+BBB", "CCC"):
            for i in range(cells_per_condition):
                rows.append(
                    {
                        PERTURBATION: perturbation,
                        PERTURBATION_TYPE: "control" if perturbation == CONTROL else "crispri",
                        CONTEXT: context,
                        BATCH: f"b{i % 2}",
                    }
                )
    obs = pd.DataFrame(rows)
    obs.index = [f"cell{i}" for i in range(len(obs))]
    return obs


def truth_drug(cells_per_condition: int = 5) -> pd.DataFrame:
    """Canonical obs of a drug screen with doses (µM), a combination and a time point."""
    conditions = [
        (CONTROL, ""),
        ("drugA", "0.1"),
        ("drugA", "10"),
        ("drugB", "1"),
        ("drugA+drugB", "0.1+1"),
    ]
    rows = []
    for context in ("A549", "MCF7"):
        for perturbation, dose in conditions:
            for i in range(cells_per_condition):
                rows.append(
                    {
                        PERTURBATION: perturbation,
                        PERTURBATION_TYPE: "control" if perturbation == CONTROL else "drug",
                        CONTEXT: context,
                        BATCH: f"plate{i % 2}",
                        DOSE: dose,
                        TIME: 24.0,
                    }
                )
    obs = pd.DataFrame(rows)
    obs.index = [f"cell{i}" for i in range(len(obs))]
    return obs


def _source_genetic(layout: str, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """obs and var of the genetic truth as a file in ``layout`` would hold them."""
    p = truth[PERTURBATION]
    var = pd.DataFrame(index=GENES)
    if layout == "vcc":
        # Combinations given in unsorted order, to check they are sorted on the way in.
        label = p.replace({CONTROL: "non-targeting", "AAA+BBB": "BBB+AAA"})
        obs = pd.DataFrame({"target_gene": label, "cell_type": truth[CONTEXT]})
        obs["gem_group"] = truth[BATCH]
    elif layout == "gears":
        mapping = {CONTROL: "ctrl", "AAA": "AAA+ctrl", "BBB": "ctrl+BBB", "AAA+BBB": "BBB+AAA"}
        mapping["CCC"] = "CCC+ctrl"
        obs = pd.DataFrame({"condition": p.map(mapping), "cell_type": truth[CONTEXT]})
        obs["batch"] = truth[BATCH]
        # GEARS files often index genes by Ensembl ID and keep symbols in var['gene_name'].
        var = pd.DataFrame({"gene_name": GENES}, index=ENSEMBL)
    elif layout == "scperturb":
        obs = pd.DataFrame({"perturbation": p, "celltype": truth[CONTEXT]})
        obs["perturbation_type"] = np.where(p == CONTROL, "control", "CRISPRi")
        obs["replicate"] = truth[BATCH]
    elif layout == "celltwin":
        obs = truth.copy()
    else:
        raise ValueError(layout)
    obs.index = truth.index
    return obs, var


@pytest.fixture
def genes() -> list[str]:
    """Gene symbols of the generated data."""
    return list(GENES)


@pytest.fixture
def ensembl() -> list[str]:
    """Ensembl IDs matching :func:`genes`, position by position."""
    return list(ENSEMBL)


@pytest.fixture
def counts() -> Callable[..., sp.csr_matrix]:
    """``counts(n_cells, seed=0)`` -> integer counts for the generated genes."""
    return counts_matrix


@pytest.fixture
def make_adata() -> Callable[..., ad.AnnData]:
    """``make_adata(obs, seed=0)`` -> AnnData of integer counts with the generated genes."""

    def make(obs: pd.DataFrame, *, seed: int = 0) -> ad.AnnData:
        return ad.AnnData(
            X=counts_matrix(len(obs), seed=seed), obs=obs, var=pd.DataFrame(index=GENES)
        )

    return make


@pytest.fixture
def genetic() -> pd.DataFrame:
    """Canonical truth of the genetic screen."""
    return truth_genetic()


@pytest.fixture
def drug() -> pd.DataFrame:
    """Canonical truth of the drug screen."""
    return truth_drug()


@pytest.fixture
def make_source() -> Callable[[str, pd.DataFrame], ad.AnnData]:
    """``make_source(layout, truth)`` -> AnnData with integer counts in that layout's columns."""

    def make(layout: str, truth: pd.DataFrame) -> ad.AnnData:
        obs, var = _source_genetic(layout, truth)
        return ad.AnnData(X=counts_matrix(len(obs)), obs=obs, var=var)

    return make


@pytest.fixture
def canonical(genetic: pd.DataFrame) -> ad.AnnData:
    """A valid canonical AnnData (log-normalised X, counts layer) of the genetic screen."""
    from celltwin.io import to_canonical

    raw = ad.AnnData(
        X=counts_matrix(len(genetic)), obs=genetic.copy(), var=pd.DataFrame(index=GENES)
    )
    return to_canonical(raw)


@pytest.fixture
def write_h5ad(tmp_path: Path) -> Callable[[ad.AnnData, str], Path]:
    """Write an AnnData to ``tmp_path / name`` and return the path."""

    def write(adata: ad.AnnData, name: str) -> Path:
        path = tmp_path / name
        adata.write_h5ad(path)
        return path

    return write


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; skips when absent."""
    folder = shared_dir() / "data"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}: set CELLTWIN_SHARED to the shared folder")
    return folder
