"""The estimator contract, checked for every registered model (after sklearn's
``parametrize_with_checks``): parameters, fit, canonical predictions, gene alignment, unseen
conditions, isolation from test cells, and save/load (round trip in a fresh process, and
refusal of damaged directories).

Models needing a pip extra (the peers State and scGen) run with tiny training settings
(:data:`QUICK`) when their packages are installed, and are skipped, saying what to install, when
they are not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import (
    CONTEXT,
    CONTROL,
    PERTURBATION,
    PERTURBATION_TYPE,
    SPLIT,
    TRAIN,
    UNS_KEY,
)
from celltwin.models import (
    Model,
    ModelFormatError,
    NotFittedError,
    UnseenConditionError,
    available,
    conditions_of,
    get_model,
    get_spec,
    load,
)
from celltwin.models._persist import metadata_checksum

#: Tiny training settings of the models that are slow at their defaults (a second or two each).
QUICK: dict[str, dict] = {
    "state": dict(
        max_steps=3, hidden_dim=16, n_heads=2, n_layers=1, cell_set_len=8, batch_size=2, n_threads=1
    ),
    "scgen": dict(n_hidden=16, n_latent=4, max_epochs=1, n_threads=1),
}
#: Registered cell and pseudobulk models (signature models have their own checks).
CELL_MODELS = [name for name in available().index if get_spec(name).predicts != "signatures"]
#: Those whose packages are installed (every model without a pip extra).
INSTALLED = [name for name in CELL_MODELS if get_spec(name).installed]


def _param(name: str) -> object:
    spec = get_spec(name)
    if spec.installed:
        return name
    reason = f"{name} needs {spec.missing_modules()} ({spec.install_hint})"
    return pytest.param(name, marks=pytest.mark.skip(reason=reason))


NAMES = [_param(name) for name in CELL_MODELS]


def _model(name: str, **params) -> Model:
    return get_model(name, **{**QUICK.get(name, {}), **params})


@pytest.fixture(scope="module")
def fitted(experiment) -> dict[str, Model]:
    return {name: _model(name).fit(experiment.adata) for name in INSTALLED}


def _seen(experiment) -> list[tuple[str, str]]:
    return [("A", experiment.seen_single), ("B", experiment.seen_combo)]


def _n_controls(adata: ad.AnnData, context: str) -> int:
    obs = adata.obs
    return int(((obs[CONTEXT] == context) & (obs[PERTURBATION] == CONTROL)).sum())


# --- parameters and fit -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_init_only_stores_parameters(name: str) -> None:
    model = _model(name)
    assert vars(model) == model.get_params()
    assert not [a for a in vars(model) if a.endswith("_")]
    clone = get_model(name, **model.get_params())
    assert clone.get_params() == model.get_params()
    assert type(model).__name__ in repr(model)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(ad.AnnData(np.zeros((1, 1))), conditions=[("A", "X")])


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_learns_from_training_cells_only(name: str, experiment) -> None:
    adata = experiment.adata
    before = adata.obs.copy()
    model = _model(name)
    assert model.fit(adata) is model
    assert model.genes_ == list(adata.var_names)
    assert model.n_train_cells_ == int((adata.obs[SPLIT] == TRAIN).sum())
    seen = set(model.conditions_[PERTURBATION])
    assert experiment.held_single not in seen and experiment.held_combo not in seen
    assert experiment.unseen_context not in set(model.conditions_[CONTEXT])
    assert experiment.unseen_context in model.contexts_  # its controls are training cells
    pd.testing.assert_frame_equal(adata.obs, before)  # the input is not modified


@pytest.mark.parametrize("name", NAMES)
def test_fit_never_reads_test_cells(name: str, experiment) -> None:
    adata = experiment.adata
    poisoned = adata.copy()
    x = poisoned.X.toarray()
    test_rows = np.flatnonzero(poisoned.obs[SPLIT].to_numpy() != TRAIN)
    x[test_rows[::2]] = np.nan
    x[test_rows[1::2]] = 1e6
    poisoned.X = sp.csr_matrix(x)
    # The poison is real: a model that read every cell would fail on it.
    with pytest.raises(ValueError, match="NaN"):
        _model(name).fit(poisoned, split_key=None)

    dropped = adata[adata.obs[SPLIT].to_numpy() == TRAIN].copy()
    reference = _model(name).fit(adata).predict(adata, conditions=_seen(experiment), seed=1)
    for training_data in (poisoned, dropped):
        pred = _model(name).fit(training_data).predict(adata, conditions=_seen(experiment), seed=1)
        np.testing.assert_array_equal(pred.X, reference.X)


# --- predictions --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_prediction_is_canonical_and_of_the_declared_kind(name: str, experiment, fitted) -> None:
    adata, model, spec = experiment.adata, fitted[name], get_spec(name)
    conditions = _seen(experiment)
    pred = model.predict(adata, conditions=conditions)
    assert list(pred.var_names) == model.genes_
    assert pred.X.dtype == np.float32
    assert np.all(np.isfinite(pred.X)) and pred.X.min() >= 0
    assert pred.obs_names.is_unique
    for key in (CONTEXT, PERTURBATION, PERTURBATION_TYPE):
        assert key in pred.obs.columns
    assert set(pred.obs[PERTURBATION_TYPE]) == {"crispr_ko"}
    info = pred.uns[UNS_KEY]["prediction"]
    assert info["kind"] == spec.predicts and info["model"] == name
    assert pred.uns[UNS_KEY]["normalization"] == adata.uns[UNS_KEY]["normalization"]
    counts = pred.obs.groupby([CONTEXT, PERTURBATION]).size()
    for context, perturbation in conditions:
        expected = _n_controls(adata, context) if spec.predicts == "cells" else 1
        assert counts[(context, perturbation)] == expected
    # Asking for the control gives the controls (every model's effect of "control" is none).
    ctrl = model.predict(adata, conditions=[("B", CONTROL)])
    rows = ((adata.obs[CONTEXT] == "B") & (adata.obs[PERTURBATION] == CONTROL)).to_numpy()
    truth = adata.X[rows].toarray()
    expected = truth if spec.predicts == "cells" else truth.mean(axis=0, keepdims=True)
    np.testing.assert_allclose(ctrl.X, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_n_cells_and_seed(name: str, experiment, fitted) -> None:
    adata, model = experiment.adata, fitted[name]
    conditions = _seen(experiment)
    cells = get_spec(name).predicts == "cells"
    a = model.predict(adata, conditions=conditions, n_cells=7, seed=5)
    b = model.predict(adata, conditions=conditions, n_cells=7, seed=5)
    c = model.predict(adata, conditions=conditions, n_cells=7, seed=6)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.n_obs == (7 * len(conditions) if cells else len(conditions))
    assert (not np.array_equal(a.X, c.X)) if cells else np.array_equal(a.X, c.X)
    # More cells than controls: drawn with replacement.
    many = model.predict(adata, conditions=conditions[:1], n_cells=100)
    assert many.n_obs == (100 if cells else 1)
    # A conditions table with an n_cells column (here: the test conditions' sizes).
    table = conditions_of(adata, split=TRAIN)
    table = table[table[CONTEXT].isin(["A", "B"])].head(3)
    sized = model.predict(adata, conditions=table)
    assert sized.n_obs == (int(table["n_cells"].sum()) if cells else len(table))


@pytest.mark.parametrize("name", NAMES)
def test_genes_are_matched_by_name(name: str, experiment, fitted) -> None:
    adata, model = experiment.adata, fitted[name]
    conditions = _seen(experiment)
    reference = model.predict(adata, conditions=conditions)
    x = adata.X.toarray()
    order = np.arange(adata.n_vars)[::-1]
    shuffled = ad.AnnData(
        np.hstack([x[:, order], np.ones((adata.n_obs, 1))]),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=[*adata.var_names[order], "EXTRA"]),
    )
    np.testing.assert_array_equal(model.predict(shuffled, conditions=conditions).X, reference.X)
    missing = adata[:, adata.var_names[1:]].copy()
    with pytest.raises(ValueError, match=rf"lacks 1 of the {adata.n_vars} training genes"):
        model.predict(missing, conditions=conditions)


@pytest.mark.parametrize("name", NAMES)
def test_contexts_without_control_cells_are_refused(name: str, experiment, fitted) -> None:
    adata = experiment.adata
    no_a_controls = adata[
        ~((adata.obs[CONTEXT] == "A") & (adata.obs[PERTURBATION] == CONTROL)).to_numpy()
    ].copy()
    with pytest.raises(ValueError, match=r"no control cells of context\(s\) \['A'\]"):
        fitted[name].predict(no_a_controls, conditions=_seen(experiment))


def _with_new_context(adata: ad.AnnData, *, source: str, new: str) -> ad.AnnData:
    """adata plus a copy of ``source``'s control cells labelled as context ``new``."""
    obs = adata.obs.astype(str)
    rows = ((obs[CONTEXT] == source) & (obs[PERTURBATION] == CONTROL)).to_numpy()
    extra_obs = obs[rows].copy()
    extra_obs[CONTEXT] = new
    extra_obs.index = [f"{new}_{i}" for i in extra_obs.index]
    return ad.AnnData(
        sp.vstack([adata.X, adata.X[rows]]).tocsr(),
        obs=pd.concat([obs, extra_obs]),
        var=pd.DataFrame(index=adata.var_names),
    )


@pytest.mark.parametrize("kind", ["perturbation", "combination", "context"])
@pytest.mark.parametrize("name", NAMES)
def test_unseen_conditions_are_predicted_or_refused_as_declared(
    name: str, kind: str, experiment, fitted
) -> None:
    adata, model = experiment.adata, fitted[name]
    query = _with_new_context(adata, source="C", new="D")
    conditions = {
        "perturbation": [("A", experiment.held_single)],
        "combination": [("A", experiment.held_combo)],
        # C has training controls but no perturbed training cells; D was never seen at all.
        "context": [("C", experiment.seen_single), ("D", experiment.seen_single)],
    }[kind]
    if kind in get_spec(name).handles_unseen:
        pred = model.predict(query, conditions=conditions)
        assert np.all(np.isfinite(pred.X))
        assert set(pred.obs[PERTURBATION]) == {c[1] for c in conditions}
    else:
        with pytest.raises(UnseenConditionError, match=f"{name} cannot predict"):
            model.predict(query, conditions=conditions)


# --- save / load ----------------------------------------------------------------------------------

_ROUNDTRIP = """
import sys
from pathlib import Path
import anndata as ad, numpy as np, pandas as pd
from celltwin.models import load
root = Path(sys.argv[1])
q = np.load(root / "query.npz")
obs = pd.DataFrame({"context": q["context"], "perturbation": q["perturbation"]},
                   index=[f"c{i}" for i in range(len(q["context"]))])
query = ad.AnnData(q["X"], obs=obs, var=pd.DataFrame(index=q["genes"]))
conditions = [tuple(c) for c in q["conditions"]]
for name in sys.argv[2:]:
    pred = load(root / name).predict(query, conditions=conditions, n_cells=6, seed=1)
    np.savez(root / f"{name}.npz", X=pred.X, perturbation=pred.obs["perturbation"].to_numpy(str),
             kind=np.array(pred.uns["celltwin"]["prediction"]["kind"]))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory, experiment, fitted) -> Path:
    """Every fitted model saved, and each one's predictions from a fresh Python process."""
    root = tmp_path_factory.mktemp("models")
    adata = experiment.adata
    for name, model in fitted.items():
        model.save(root / name)
    np.savez(
        root / "query.npz",
        X=adata.X.toarray(),
        context=adata.obs[CONTEXT].to_numpy(str),
        perturbation=adata.obs[PERTURBATION].to_numpy(str),
        genes=np.array(adata.var_names, dtype=str),
        conditions=np.array(_seen(experiment), dtype=str),
    )
    subprocess.run(
        [sys.executable, "-c", _ROUNDTRIP, str(root), *fitted],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_in_a_fresh_process(name: str, experiment, fitted, saved) -> None:
    assert sorted(p.name for p in (saved / name).iterdir()) == ["model.json", "weights.safetensors"]
    expected = fitted[name].predict(
        experiment.adata, conditions=_seen(experiment), n_cells=6, seed=1
    )
    got = np.load(saved / f"{name}.npz")
    np.testing.assert_array_equal(got["X"], expected.X)
    np.testing.assert_array_equal(got["perturbation"], expected.obs[PERTURBATION].to_numpy(str))
    assert str(got["kind"]) == get_spec(name).predicts
    # In-process too, through the class method; and the wrong class is refused.
    again = type(fitted[name]).load(saved / name)
    assert again.get_params() == fitted[name].get_params()
    other = next(n for n in INSTALLED if n != name)
    with pytest.raises(ModelFormatError, match="not a"):
        type(get_model(other)).load(saved / name)


# A pickle that would create a file if anything unpickled it (protocol 0, written out by hand so
# no pickle module is needed): os.system("touch <marker>").
def _pickle_payload(marker: Path) -> bytes:
    return f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()


def _edit_json(directory: Path, edit, *, reseal: bool = True) -> None:
    """Edit model.json; ``reseal`` updates its checksum, to reach the checks behind it."""
    meta = json.loads((directory / "model.json").read_text())
    edit(meta)
    if reseal:
        meta["metadata_sha256"] = metadata_checksum(meta)
    (directory / "model.json").write_text(json.dumps(meta))


def _swap_two_genes(meta: dict) -> None:
    meta["genes"][0], meta["genes"][1] = meta["genes"][1], meta["genes"][0]


def _set_sha(directory: Path) -> None:
    import hashlib

    digest = hashlib.sha256((directory / "weights.safetensors").read_bytes()).hexdigest()
    _edit_json(directory, lambda m: m["weights"].__setitem__("sha256", digest))


def _first_array(meta: dict) -> dict:
    return next(iter(meta["weights"]["arrays"].values()))


TAMPERING = {
    "json_genes_swapped": (
        lambda d: _edit_json(d, _swap_two_genes, reseal=False),
        "model.json does not match its checksum",
    ),
    "json_param_edited": (
        lambda d: _edit_json(d, lambda m: m.__setitem__("celltwin_version", "9"), reseal=False),
        "edited by hand or damaged",
    ),
    "json_syntax": (lambda d: (d / "model.json").write_text("{not json"), "not valid JSON"),
    "json_truncated": (
        lambda d: (d / "model.json").write_bytes((d / "model.json").read_bytes()[:200]),
        "not valid JSON",
    ),
    "json_missing": (lambda d: (d / "model.json").unlink(), "model.json is missing"),
    "weights_missing": (lambda d: (d / "weights.safetensors").unlink(), "is missing"),
    "weights_truncated": (
        lambda d: (d / "weights.safetensors").write_bytes(
            (lambda b: b[: len(b) // 2])((d / "weights.safetensors").read_bytes())
        ),
        "checksum mismatch",
    ),
    "weights_flipped_byte": (
        lambda d: (d / "weights.safetensors").write_bytes(
            (lambda b: b[:-1] + bytes([b[-1] ^ 1]))((d / "weights.safetensors").read_bytes())
        ),
        "checksum mismatch",
    ),
    "format_version": (
        lambda d: _edit_json(d, lambda m: m.__setitem__("format_version", 99)),
        "format version 99 is not supported",
    ),
    "unknown_model": (
        lambda d: _edit_json(d, lambda m: m.__setitem__("model", "deep_magic")),
        "unknown model 'deep_magic'",
    ),
    "unknown_param": (
        lambda d: _edit_json(d, lambda m: m["params"].__setitem__("bogus", 1)),
        "do not fit",
    ),
    "weights_path": (
        lambda d: _edit_json(d, lambda m: m["weights"].__setitem__("file", "../elsewhere")),
        "weights file must be",
    ),
    "genes_shape": (
        lambda d: _edit_json(d, lambda m: m.__setitem__("genes", m["genes"][:-1])),
        "shape mismatch",
    ),
    "declared_shape": (
        lambda d: _edit_json(d, lambda m: _first_array(m).__setitem__("shape", [1, 1])),
        "shape mismatch",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
@pytest.mark.parametrize("name", NAMES)
def test_damaged_directories_fail_clearly(name: str, case: str, saved, tmp_path) -> None:
    directory = tmp_path / name
    shutil.copytree(saved / name, directory)
    if case in ("genes_shape", "declared_shape") and not fitted_arrays(directory):
        pytest.skip(f"{name} stores no arrays, so there is no shape to contradict")
    tamper, message = TAMPERING[case]
    tamper(directory)
    with pytest.raises(ModelFormatError, match=message):
        load(directory)


def fitted_arrays(directory: Path) -> dict:
    return json.loads((directory / "model.json").read_text())["weights"]["arrays"]


@pytest.mark.parametrize("name", NAMES)
def test_loading_never_runs_code(name: str, saved, tmp_path) -> None:
    directory = tmp_path / name
    shutil.copytree(saved / name, directory)
    marker = tmp_path / "pwned"
    (directory / "weights.safetensors").write_bytes(_pickle_payload(marker))
    _set_sha(directory)  # the checksum matches: only the file format can stop it
    with pytest.raises(ModelFormatError, match="not a readable safetensors file"):
        load(directory)
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="no model directory"):
        load(tmp_path / "nowhere")
