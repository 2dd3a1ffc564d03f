"""Validation at the boundary: each problem is caught, and its message names what, where, the fix."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin import io
from celltwin._keys import CONTEXT, CONTROL, COUNTS_LAYER, GENE_ID, PERTURBATION, UNS_KEY
from celltwin.pp import log_normalize


def _one(problems: list[io.Problem], code: str) -> io.Problem:
    found = [p for p in problems if p.code == code]
    assert len(found) == 1, [str(p) for p in problems]
    return found[0]


def _assert_message(problem: io.Problem, *, what: str, where: str, fix: str) -> None:
    assert what in problem.what, problem.what
    assert where in problem.where, problem.where
    assert fix in problem.fix, problem.fix
    # The composed message carries all three, and so does the error raised from it.
    assert what in problem.message and where in problem.message and fix in problem.message


def test_valid_canonical_data_has_no_problems(canonical) -> None:
    assert io.check(canonical) == []
    io.validate(canonical)
    io.validate(canonical, require_counts=True)


def test_no_control_cells(make_source, genetic) -> None:
    source = make_source("vcc", genetic)
    source = source[source.obs["target_gene"] != "non-targeting"].copy()
    with pytest.raises(io.ValidationError) as err:
        io.to_canonical(source)
    problem = _one(err.value.problems, "no_controls")
    _assert_message(
        problem, what="no control cells", where="obs['target_gene'] values", fix="control_label="
    )
    assert "'AAA'" in problem.where  # the values seen
    # On canonical data too.
    canonical = io.to_canonical(make_source("vcc", genetic))
    canonical = canonical[canonical.obs[PERTURBATION] != CONTROL].copy()
    problem = _one(io.check(canonical), "no_controls")
    _assert_message(
        problem, what="no control cells", where="obs['perturbation']", fix="control_label="
    )


def test_context_without_controls_is_a_warning(canonical) -> None:
    drop = (canonical.obs[CONTEXT] == "RPE1") & (canonical.obs[PERTURBATION] == CONTROL)
    adata = canonical[~drop.to_numpy()].copy()
    problem = _one(io.check(adata), "context_without_controls")
    assert problem.severity == "warning"
    assert "'RPE1'" in problem.where
    io.validate(adata)  # warnings do not raise


def test_duplicated_gene_names(make_adata, genetic, tmp_path) -> None:
    adata = make_adata(genetic.copy())
    names = list(adata.var_names)
    names[3] = names[4] = "TP53"
    adata.var_names = names
    with pytest.raises(io.ValidationError) as err:
        io.to_canonical(adata)
    problem = _one(err.value.problems, "duplicate_genes")
    _assert_message(
        problem, what="occur more than once", where="'TP53 x2'", fix="var_names_make_unique()"
    )
    # From a file: celltwin's message, not anndata's warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # anndata warns when writing such a file
        adata.write_h5ad(tmp_path / "dup.h5ad")
    with pytest.raises(io.ValidationError, match="var_names_make_unique"):
        io.read(tmp_path / "dup.h5ad")


def test_empty_gene_names(make_adata, genetic) -> None:
    adata = make_adata(genetic.copy())
    names = list(adata.var_names)
    names[7] = ""
    adata.var_names = names
    problem = _one(io.check(adata), "empty_genes")
    _assert_message(problem, what="empty or missing", where="positions '7'", fix="drop those genes")


@pytest.mark.parametrize(
    ("bad", "code", "what"),
    [(-1.5, "negative_values", "negative"), (np.nan, "non_finite", "NaN or infinite")],
)
def test_negative_or_non_finite_values(make_adata, genetic, bad, code, what) -> None:
    adata = make_adata(genetic.copy())
    x = adata.X.toarray()
    x[5, 2] = bad
    adata.X = sp.csr_matrix(x)
    with pytest.raises(io.ValidationError) as err:
        io.to_canonical(adata)
    _assert_message(_one(err.value.problems, code), what=what, where="X", fix="")
    assert "Fix: " in str(err.value)


def test_sparse_values_are_all_checked_beyond_the_row_sample() -> None:
    # 5,000 rows, more than the sample: a single negative value in any row is still found.
    rng = np.random.default_rng(1)
    x = sp.random(5000, 40, density=0.05, format="csr", random_state=1, dtype=np.float64)
    x.data = np.rint(x.data * 10) + 1
    x.data[int(rng.integers(x.nnz))] = -3.0
    stats = io.matrix_stats(x)
    assert stats.kind == "negative" and stats.n_negative == 1
    assert stats.rows_sampled == 2000 and stats.n_rows == 5000


def test_counts_and_log_are_told_apart(counts) -> None:
    x = counts(3000)
    assert io.matrix_stats(x).kind == "counts"
    assert io.matrix_stats(x.toarray()).kind == "counts"
    logged = ad.AnnData(x.copy())
    log_normalize(logged)
    stats = io.matrix_stats(logged.X)
    assert stats.kind == "log_normalized" and not stats.integer
    assert io.matrix_stats(x.multiply(1e4 / x.sum(1)).tocsr()).kind == "not_log"


def test_log_data_is_never_taken_for_counts(canonical) -> None:
    source = ad.AnnData(canonical.X.copy(), obs=canonical.obs[[PERTURBATION, CONTEXT]].copy())
    source.obs["perturbation_type"] = canonical.obs["perturbation_type"]
    source.var_names = canonical.var_names
    adata = io.to_canonical(source)
    assert COUNTS_LAYER not in adata.layers
    assert np.array_equal(adata.X.toarray(), canonical.X.toarray())
    assert adata.uns[UNS_KEY]["x_kind"] == "log_normalized"
    assert adata.uns[UNS_KEY]["normalization"]["method"] == "as_provided"


def test_counts_are_taken_from_raw_when_x_is_log(canonical) -> None:
    source = ad.AnnData(canonical.layers[COUNTS_LAYER].copy(), obs=canonical.obs.copy())
    source.var_names = canonical.var_names
    source.raw = source
    source.X = canonical.X.copy()
    adata = io.to_canonical(source)
    assert np.array_equal(
        adata.layers[COUNTS_LAYER].toarray(), canonical.layers[COUNTS_LAYER].toarray()
    )
    assert np.array_equal(adata.X.toarray(), canonical.X.toarray())


def test_log_data_where_counts_are_expected(canonical) -> None:
    adata = canonical.copy()
    del adata.layers[COUNTS_LAYER]
    io.validate(adata)  # fine without counts ...
    with pytest.raises(io.ValidationError) as err:  # ... unless they are required
        io.validate(adata, require_counts=True)
    _assert_message(
        _one(err.value.problems, "counts_required"),
        what="log-normalised values",
        where="layers['counts'] missing",
        fix="raw-count version",
    )
    adata.layers[COUNTS_LAYER] = adata.X.copy()  # log data posing as counts
    _assert_message(
        _one(io.check(adata), "log_as_counts"),
        what="holds log-normalised values, not counts",
        where="layers['counts']",
        fix="raw integer counts",
    )


def test_non_integer_counts_where_counts_are_required(canonical) -> None:
    adata = canonical.copy()
    adata.layers[COUNTS_LAYER] = adata.layers[COUNTS_LAYER] * 37.3
    with pytest.raises(io.ValidationError) as err:
        io.validate(adata, require_counts=True)
    _assert_message(
        _one(err.value.problems, "non_integer_counts"),
        what="non-integer values",
        where="layers['counts']",
        fix="np.rint",
    )


def test_counts_where_log_is_expected(canonical) -> None:
    adata = canonical.copy()
    adata.X = adata.layers[COUNTS_LAYER].copy()
    with pytest.raises(io.ValidationError) as err:
        io.validate(adata)
    _assert_message(
        _one(err.value.problems, "counts_in_x"),
        what="raw counts where celltwin expects log-normalised",
        where="X: integer values",
        fix="celltwin.pp.log_normalize(adata)",
    )


def test_perturbation_column_with_missing_values(make_source, genetic) -> None:
    source = make_source("vcc", genetic)
    labels = source.obs["target_gene"].astype(object).to_numpy()
    labels[[2, 9]] = None
    source.obs["target_gene"] = labels
    with pytest.raises(io.ValidationError) as err:
        io.to_canonical(source)
    problem = _one(err.value.problems, "missing_values")
    _assert_message(
        problem,
        what="2 cell(s) have no perturbation label",
        where="obs['target_gene']",
        fix="notna()",
    )
    assert "'cell2'" in problem.where and "'cell9'" in problem.where


def test_ensembl_ids_are_mapped_or_named_in_the_error(make_adata, genetic, genes, ensembl) -> None:
    adata = make_adata(genetic.copy())
    adata.var_names = ensembl
    with pytest.raises(io.ValidationError) as err:
        io.to_canonical(adata)
    _assert_message(
        _one(err.value.problems, "ensembl_ids"),
        what="Ensembl IDs",
        where="ENSG00000000000",
        fix="gene_symbol_key=",
    )
    # With the mapping in a var column named by the user.
    adata.var["hgnc"] = genes
    mapped = io.to_canonical(adata, gene_symbol_key="hgnc")
    assert list(mapped.var_names) == genes and list(mapped.var[GENE_ID]) == ensembl
    # Found automatically under a common name; a missing symbol keeps its ID.
    adata.var["feature_name"] = [*genes[:-1], None]
    del adata.var["hgnc"]
    mapped = io.to_canonical(adata)
    assert list(mapped.var_names) == [*genes[:-1], ensembl[-1]]
    with pytest.raises(io.ValidationError, match="gene_symbol_key='nope' is not a var column"):
        io.to_canonical(adata, gene_symbol_key="nope")


def test_read_errors_are_messages_not_tracebacks(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        io.read(tmp_path / "missing.h5ad")
    junk = tmp_path / "junk.h5ad"
    junk.write_text("not hdf5")
    with pytest.raises(io.ValidationError) as err:
        io.read(junk)
    _assert_message(
        _one(err.value.problems, "unreadable"),
        what="cannot read the file as h5ad",
        where="junk.h5ad",
        fix="written by anndata",
    )
    other = tmp_path / "table.csv"
    other.write_text("a,b\n")
    with pytest.raises(io.ValidationError, match=r"reads \.h5ad files"):
        io.read(other)


def test_bad_options_are_named(make_source, genetic) -> None:
    source = make_source("vcc", genetic)
    with pytest.raises(io.ValidationError, match="unknown convention 'vccc'"):
        io.to_canonical(source, convention="vccc")
    with pytest.raises(io.ValidationError, match="batch_key='lane' is not an obs column"):
        io.to_canonical(source, batch_key="lane")
    with pytest.raises(io.ValidationError, match="unknown perturbation_type 'CRISPR'"):
        io.to_canonical(source, perturbation_type="CRISPR")
    with pytest.raises(io.ValidationError, match="both context_key and context"):
        io.to_canonical(source, context_key="cell_type", context="K562")
    with pytest.raises(io.ValidationError, match="no cell is labelled control_label='NT'"):
        io.to_canonical(source, control_label="NT")


def test_check_on_a_raw_file_reports_what_reading_would(make_source, genetic) -> None:
    source = make_source("vcc", genetic)
    assert io.check(source) == []  # raw counts in X are fine: reading normalises them
    source.obs = pd.DataFrame({"sgRNA": ["x", "y"] * (source.n_obs // 2)}, index=source.obs_names)
    assert [p.code for p in io.check(source)] == ["unknown_convention"]
    with pytest.raises(io.ValidationError, match="to_canonical"):
        io.validate(source)
