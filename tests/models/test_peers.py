"""The peer adapters (State, scGen) inside celltwin's model contract.

The end-to-end tests fit each peer for a few steps on a small simulation (context ``C`` held
out) and are skipped, saying why, when the peer's packages are absent. The rest (lazy imports,
the install hint, parameter checks, weight packing) runs without them.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, PERTURBATION_TYPE, SPLIT, TEST, UNS_KEY
from celltwin.models import Model, ModelFormatError, UnseenConditionError, conditions_of, load
from celltwin.models._peers import ScGenModel, StateTransitionModel
from celltwin.models._peers._common import (
    check_manifest,
    pack_state_dict,
    unpack_state_dict,
)
from celltwin.simulate import simulate
from celltwin.split import split_contexts

#: Per peer: the class, the packages it needs, and parameters for a quick fit.
PEERS = {
    "state": (
        StateTransitionModel,
        ("state", "cell_load"),
        dict(
            max_steps=200,
            lr=3e-3,
            hidden_dim=64,
            n_heads=4,
            n_layers=2,
            cell_set_len=32,
            batch_size=4,
            n_threads=1,
        ),
    ),
    "scgen": (
        ScGenModel,
        ("scvi", "scgen"),
        dict(n_hidden=64, n_latent=10, max_epochs=20, n_threads=1),
    ),
}
PEER_MODULES = ("state", "cell_load", "scgen", "scvi", "lightning", "transformers")


def _skip_without(packages: tuple[str, ...]) -> None:
    for package in packages:
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install 'celltwin[peers]')")
    # scgen cannot be imported as such under scvi-tools 1.x (the adapter patches that); importing
    # the rest proves the installation works.
    for package in packages:
        if package != "scgen":
            pytest.importorskip(package, reason=f"{package} does not import")


@pytest.fixture(scope="module")
def data() -> AnnData:
    adata = simulate(
        n_genes=50,
        contexts=("A", "B", "C"),
        n_perturbations=1,
        combinations=0,
        cells_per_condition=60,
        seed=0,
    ).adata
    split_contexts(adata, test=["C"])
    return adata


@pytest.fixture(scope="module", params=sorted(PEERS))
def fitted(request, data) -> Model:
    cls, packages, params = PEERS[request.param]
    _skip_without(packages)
    return cls(**params).fit(data)


def _cells(adata: AnnData, context: str, perturbed: bool) -> np.ndarray:
    obs = adata.obs
    rows = (obs[CONTEXT] == context).to_numpy() & (
        (obs[PERTURBATION] != CONTROL).to_numpy() == perturbed
    )
    return adata.X[rows].toarray()


# --- end to end (needs the peers' packages) -----------------------------------------------------


@pytest.mark.slow
def test_fit_predict_held_out_context(fitted: Model, data: AnnData) -> None:
    conditions = conditions_of(data, split=TEST)
    assert conditions[[CONTEXT, PERTURBATION]].values.tolist() == [["C", "TF005"]]
    pred = fitted.predict(data, conditions=conditions)

    assert list(pred.var_names) == list(data.var_names) == fitted.genes_
    assert pred.X.dtype == np.float32 and np.all(np.isfinite(pred.X)) and pred.X.min() >= 0
    assert pred.n_obs == int(conditions["n_cells"].sum()) == 60
    assert set(pred.obs[CONTEXT]) == {"C"} and set(pred.obs[PERTURBATION]) == {"TF005"}
    assert set(pred.obs[PERTURBATION_TYPE]) == {"crispr_ko"}
    assert pred.uns[UNS_KEY]["prediction"]["model"] == fitted.name

    # The held-out response: the three strongest true changes are predicted in the right
    # direction (further down the list C's changes are its own: A and B move those genes by
    # < 0.25 with mixed signs), and the knocked-out gene drops by at least a quarter of its drop.
    control = _cells(data, "C", perturbed=False).mean(axis=0)
    truth = _cells(data, "C", perturbed=True).mean(axis=0) - control
    predicted = np.asarray(pred.X).mean(axis=0) - control
    strongest = np.argsort(-np.abs(truth))[:3]
    assert np.sign(predicted[strongest]).tolist() == np.sign(truth[strongest]).tolist()
    assert truth[strongest[0]] < -1.0 and predicted[strongest[0]] < 0.25 * truth[strongest[0]]

    # The same seed gives the same cells; the control condition gives the drawn controls.
    again = fitted.predict(data, conditions=conditions)
    np.testing.assert_array_equal(again.X, pred.X)
    ctrl = fitted.predict(data, conditions=[("C", CONTROL)])
    np.testing.assert_allclose(ctrl.X, _cells(data, "C", perturbed=False), rtol=1e-6)


@pytest.mark.slow
def test_training_cells_only_and_unseen_conditions(fitted: Model, data: AnnData) -> None:
    assert fitted.n_train_cells_ == int((data.obs[SPLIT] != TEST).sum())
    assert "C" in fitted.contexts_ and "C" not in set(fitted.conditions_[CONTEXT])
    with pytest.raises(UnseenConditionError, match=f"{fitted.name} cannot predict"):
        fitted.predict(data, conditions=[("C", "TF999")])
    # A context never seen at all is predicted from its control cells.
    other = data[(data.obs[CONTEXT] == "A").to_numpy()].copy()
    other.obs[CONTEXT] = "D"
    pred = fitted.predict(other, conditions=[("D", "TF005")], n_cells=10)
    assert pred.n_obs == 10 and np.all(np.isfinite(pred.X))


@pytest.mark.slow
def test_save_load_round_trip(fitted: Model, data: AnnData, tmp_path: Path) -> None:
    fitted.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "model.json",
        "weights.safetensors",
    ]
    conditions = conditions_of(data, split=TEST)
    expected = fitted.predict(data, conditions=conditions, n_cells=25, seed=3)
    loaded = load(tmp_path / "model")
    assert type(loaded) is type(fitted) and loaded.get_params() == fitted.get_params()
    got = loaded.predict(data, conditions=conditions, n_cells=25, seed=3)
    np.testing.assert_array_equal(got.X, expected.X)

    # A model.json whose gene list disagrees with the network is refused.
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    meta["genes"] = meta["genes"][:-1]
    (tmp_path / "model" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="shape mismatch"):
        load(tmp_path / "model")


@pytest.mark.parametrize(
    ("name", "quick"),
    [
        ("state", dict(max_steps=3, hidden_dim=16, n_heads=2, n_layers=1, n_threads=1)),
        ("scgen", dict(n_hidden=16, n_latent=4, max_epochs=2, n_threads=1)),
    ],
)
def test_fit_is_reproducible(name: str, quick: dict, data: AnnData) -> None:
    cls, packages, _ = PEERS[name]
    _skip_without(packages)
    state = np.random.get_state()  # noqa: NPY002 - checks the caller's generator is untouched
    first, second = cls(**quick).fit(data), cls(**quick).fit(data)
    np.testing.assert_array_equal(first.weights_, second.weights_)
    other = cls(**quick, seed=1).fit(data)
    assert not np.array_equal(first.weights_, other.weights_)
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002


# --- without the peers' packages ------------------------------------------------------------------


def test_importing_celltwin_imports_no_peer() -> None:
    code = (
        "import sys, celltwin, celltwin.models, celltwin.models._peers; "
        f"print([m for m in {PEER_MODULES!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("name", "missing"), [("state", "state.tx.utils"), ("scgen", "scvi")])
def test_missing_packages_say_what_to_install(
    name: str, missing: str, data: AnnData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` fail
    model = PEERS[name][0]()
    with pytest.raises(ImportError, match=r"pip install 'celltwin\[peers\]'"):
        model.fit(data)


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (StateTransitionModel, {"output_space": "latent"}, "'output_space' must be one of"),
        (StateTransitionModel, {"hidden_dim": 30, "n_heads": 4}, "multiple of 'n_heads'"),
        (StateTransitionModel, {"max_steps": 0}, "'max_steps' must be a whole number >= 1"),
        (ScGenModel, {"dropout_rate": 1.5}, r"'dropout_rate' must be in \[0, 1\)"),
        (ScGenModel, {"device": "tpu"}, "'device' must be 'auto', 'cpu' or 'cuda'"),
    ],
)
def test_bad_parameters_are_named(cls: type, params: dict, message: str, data: AnnData) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**params).fit(data)


def test_weights_pack_exactly_and_check_their_manifest() -> None:
    import torch

    state = {
        "w": torch.randn(3, 4, dtype=torch.float32),
        "b": torch.tensor([1.5, -2.0], dtype=torch.float64),
        "steps": torch.tensor(12345, dtype=torch.int64),
    }
    flat, manifest = pack_state_dict(state)
    assert flat.dtype == np.float64 and flat.shape == (12 + 2 + 1,)
    back = unpack_state_dict(flat, manifest)
    for key, tensor in state.items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor)
    with pytest.raises(ModelFormatError, match="describes 15 values but the weights hold 14"):
        check_manifest(manifest, size=14)
    with pytest.raises(ModelFormatError, match="bad weights manifest entry"):
        check_manifest([["w", [3, 4], "complex64"]], size=12)
