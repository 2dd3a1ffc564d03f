"""Cell-type annotation on generated data with planted types and a planted perturbation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, UNS_KEY
from celltwin.pp import annotate_cell_types, log_normalize, read_markers
from celltwin.pp._embedding import harmonize

TYPES = ("A", "B", "C", "D")
N_MARKERS = 4  # marker genes per type (named in the marker table)
N_IDENTITY = 25  # further genes per type that the marker table does not name
N_RESPONSE = 20  # genes every stimulated cell switches on
N_OTHER = 60
STIM = "stim"


def _genes() -> list[str]:
    genes = [f"{t}_mk{i}" for t in TYPES for i in range(N_MARKERS)]
    genes += [f"{t}_id{i}" for t in TYPES for i in range(N_IDENTITY)]
    genes += [f"resp{i}" for i in range(N_RESPONSE)] + [f"bg{i}" for i in range(N_OTHER)]
    return genes


def _markers() -> pd.DataFrame:
    rows = [(t, f"{t}_mk{i}", 1.0) for t in TYPES for i in range(N_MARKERS)]
    # A and B are told apart by each other's markers, like CD14 and FCGR3A monocytes.
    rows += [("A", "B_mk0", -1.0), ("B", "A_mk0", -1.0)]
    return pd.DataFrame(rows, columns=["cell_type", "gene", "weight"])


def _cells(
    n_per_type: int, condition: str, rng: np.random.Generator, *, scale: float = 1.0
) -> AnnData:
    """Counts with planted types; in the stimulated condition type A loses its markers and takes
    on B's markers (the trap), and every cell switches on a response programme."""
    genes = _genes()
    col = {g: i for i, g in enumerate(genes)}
    n = n_per_type * len(TYPES)
    truth = np.repeat(TYPES, n_per_type)
    mean = np.full((n, len(genes)), 0.3)
    for t in TYPES:
        rows = truth == t
        mean[np.ix_(rows, [col[f"{t}_mk{i}"] for i in range(N_MARKERS)])] = 6.0
        mean[np.ix_(rows, [col[f"{t}_id{i}"] for i in range(N_IDENTITY)])] = 4.0
    if condition != CONTROL:
        mean[:, [col[f"resp{i}"] for i in range(N_RESPONSE)]] = 8.0
        a = truth == "A"
        mean[np.ix_(a, [col[f"A_mk{i}"] for i in range(N_MARKERS)])] = 0.1
        mean[np.ix_(a, [col[f"B_mk{i}"] for i in range(N_MARKERS)])] = 6.0
    size = rng.lognormal(0.0, 0.3, size=(n, 1)) * scale
    counts = rng.poisson(mean * size).astype(np.float32)
    obs = pd.DataFrame({PERTURBATION: condition, "truth": truth})
    obs.index = [f"{condition}-{i}" for i in range(n)]
    adata = AnnData(X=sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=genes))
    log_normalize(adata)
    return adata


def _experiment(seed: int = 0, n_per_type: int = 120) -> AnnData:
    import anndata

    rng = np.random.default_rng(seed)
    adata = anndata.concat([_cells(n_per_type, CONTROL, rng), _cells(n_per_type, STIM, rng)])
    return adata


def _accuracy(adata: AnnData, rows: np.ndarray | None = None) -> float:
    rows = np.ones(adata.n_obs, dtype=bool) if rows is None else rows
    return float(
        np.mean(
            adata.obs[CONTEXT].astype(str).to_numpy()[rows] == adata.obs["truth"].to_numpy()[rows]
        )
    )


def test_markers_assign_planted_types() -> None:
    adata = _cells(100, CONTROL, np.random.default_rng(1))
    annotate_cell_types(adata, markers=_markers())
    assert _accuracy(adata) >= 0.97
    assert isinstance(adata.obs[CONTEXT].dtype, pd.CategoricalDtype)
    record = adata.uns[UNS_KEY]["annotation"]
    assert record["method"] == "markers"
    assert record["aligned"] is False
    assert record["n_anchor_cells"] == adata.n_obs
    assert sum(record["counts"]["all"].values()) == adata.n_obs
    assert record["marker_genes"]["A"] == ["A_mk0", "A_mk1", "A_mk2", "A_mk3", "B_mk0"]


def test_suppressed_marker_flips_naive_scoring_but_not_the_robust_annotation() -> None:
    adata = _experiment()
    stim_a = ((adata.obs[PERTURBATION] == STIM) & (adata.obs["truth"] == "A")).to_numpy()

    # Scored cell by cell with no notion of condition, stimulated A cells look like B...
    annotate_cell_types(adata, markers=_markers(), key_added="naive")
    naive = adata.obs["naive"].astype(str).to_numpy()
    assert np.mean(naive[stim_a] == "B") > 0.9

    # ...scored on the control cells and carried over through the aligned embedding, they stay A.
    annotate_cell_types(adata, markers=_markers(), condition_key=PERTURBATION, control=CONTROL)
    assert _accuracy(adata, stim_a) >= 0.95
    assert _accuracy(adata) >= 0.95
    shares = pd.crosstab(adata.obs[CONTEXT], adata.obs[PERTURBATION], normalize="columns")
    ratio = shares[STIM] / shares[CONTROL]
    assert ratio.between(1 / 1.2, 1.2).all(), ratio
    record = adata.uns[UNS_KEY]["annotation"]
    assert record["aligned"] is True
    assert record["n_anchor_cells"] == int((adata.obs[PERTURBATION] == CONTROL).sum())
    # The response programme is recognised and kept out of the embedding.
    assert record["n_responsive_genes_excluded"] >= N_RESPONSE
    assert set(record["counts"]) == {CONTROL, STIM}


def test_reference_mapping_across_normalisations(tmp_path) -> None:
    rng = np.random.default_rng(2)
    reference = _cells(80, CONTROL, rng, scale=3.0)  # deeper sequencing than the query
    reference.obs["label"] = reference.obs["truth"]
    reference.X = reference.X * 2.0  # another scale of log values: z-scoring absorbs it
    adata = _experiment(seed=3, n_per_type=80)
    annotate_cell_types(
        adata,
        reference=reference,
        reference_key="label",
        condition_key=PERTURBATION,
        n_top_genes=150,
    )
    assert _accuracy(adata) >= 0.95
    record = adata.uns[UNS_KEY]["annotation"]
    assert record["method"] == "reference"
    assert record["reference_types"] == list(TYPES)
    # The choice was made by CV over the reference labels: every candidate was scored, and the
    # selected one scored best.
    scored = list(record["candidates"]["cv_accuracy"])
    assert len(scored) == 8 and all(0.0 <= a <= 1.0 for a in scored)
    assert record["selected"]["cv_accuracy"] == max(scored)
    # Spaces: 3 gene numbers x 3 component numbers (or the full-size one), within what was asked.
    spaces = np.asarray(record["spaces"])
    assert spaces.shape in ((9, 2), (1, 2))
    assert spaces[:, 0].max() <= 225 and spaces[:, 1].max() <= 30
    # The record is h5ad-writable (anndata stores dicts of arrays, not lists of dicts).
    adata.write_h5ad(tmp_path / "annotated.h5ad")
    # The stimulated A cells (their markers swapped for B's) stay A.
    stim_a = ((adata.obs[PERTURBATION] == STIM) & (adata.obs["truth"] == "A")).to_numpy()
    assert _accuracy(adata, stim_a) >= 0.95


def test_markers_add_types_the_reference_lacks() -> None:
    rng = np.random.default_rng(6)
    reference = _cells(60, CONTROL, rng)
    reference = reference[reference.obs["truth"] != "D"].copy()  # the reference knows no D
    reference.obs["label"] = reference.obs["truth"]
    adata = _experiment(seed=7, n_per_type=80)
    annotate_cell_types(
        adata,
        reference=reference,
        reference_key="label",
        markers=_markers(),
        condition_key=PERTURBATION,
        n_top_genes=150,
    )
    assert _accuracy(adata) >= 0.95
    record = adata.uns[UNS_KEY]["annotation"]
    assert record["method"] == "reference"
    assert record["marker_only_types"] == ["D"]
    # Without the markers, D cells must go to one of the reference's types.
    annotate_cell_types(
        adata,
        reference=reference,
        reference_key="label",
        condition_key=PERTURBATION,
        n_top_genes=150,
    )
    assert "D" not in set(adata.obs[CONTEXT].astype(str))


def test_harmonize_removes_condition_offset_and_keeps_types_apart() -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(0, 10, size=(3, 10))
    types = np.repeat(np.arange(3), 200)
    cond = np.tile(np.repeat([0, 1], 100), 3)
    x = centres[types] + rng.normal(0, 1, size=(600, 10)) + 6.0 * cond[:, None]
    corrected = harmonize(x, cond.astype(str), random_state=0)

    def offset(z: np.ndarray) -> float:
        return float(
            np.mean(
                [
                    np.linalg.norm(
                        z[(types == t) & (cond == 1)].mean(0)
                        - z[(types == t) & (cond == 0)].mean(0)
                    )
                    for t in range(3)
                ]
            )
        )

    def spread(z: np.ndarray) -> float:
        means = np.array([z[types == t].mean(0) for t in range(3)])
        return float(
            np.min([np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i)])
        )

    assert offset(corrected) < 0.2 * offset(x)
    assert spread(corrected) > 0.7 * spread(x)


def test_shipped_pbmc_markers() -> None:
    table = read_markers()
    assert list(table.columns) == ["cell_type", "gene", "weight"]
    assert table["cell_type"].nunique() >= 7
    assert (table["weight"] != 0).all()
    assert {"CD14", "FCGR3A", "MS4A1", "CD3D", "GNLY"} <= set(table["gene"])
    assert not table.duplicated(["cell_type", "gene"]).any()


def test_read_markers_validates(tmp_path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text("# comment\ncell_type\tgene\nX\tG1\nY\tG2\n")
    table = read_markers(path)
    assert table["weight"].tolist() == [1.0, 1.0]
    path.write_text("type\tgene\nX\tG1\n")
    with pytest.raises(ValueError, match="cell_type"):
        read_markers(path)
    path.write_text("cell_type\tgene\tweight\nX\tG1\t0\n")
    with pytest.raises(ValueError, match="non-zero"):
        read_markers(path)
    path.write_text("cell_type\tgene\tweight\nX\tG1\t-1\nY\tG2\t1\n")
    with pytest.raises(ValueError, match="positive marker"):
        read_markers(path)


def test_errors_name_the_problem() -> None:
    adata = _cells(20, CONTROL, np.random.default_rng(5))
    with pytest.raises(KeyError, match="'condition'"):
        annotate_cell_types(adata, markers=_markers(), condition_key="condition")
    with pytest.raises(ValueError, match="control 'ctrl'"):
        annotate_cell_types(adata, markers=_markers(), condition_key=PERTURBATION, control="ctrl")
    with pytest.raises(KeyError, match="reference_key 'label'"):
        annotate_cell_types(adata, reference=adata, reference_key="label")
