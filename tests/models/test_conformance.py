"""The estimator contract, checked for every registered model of every kind (cells,
pseudobulk, signatures) with :func:`celltwin.testing.parametrize_with_checks`: parameters,
fit, canonical predictions, gene alignment, unseen conditions, isolation from test cells, and
save/load (round trip, also in a fresh process, and refusal of damaged directories).

Models needing a pip extra (the peers State and scGen) run with tiny training settings
(:data:`QUICK`) when their packages are installed, and are skipped, saying what to install, when
they are not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from celltwin.models import Model, SignatureModel, available, get_spec
from celltwin.testing import parametrize_with_checks
from celltwin.testing._data import cell_data, signature_data

#: Tiny training settings of the models that are slow at their defaults (a second or two each).
QUICK: dict[str, dict] = {
    "state": dict(
        max_steps=3, hidden_dim=16, n_heads=2, n_layers=1, cell_set_len=8, batch_size=2, n_threads=1
    ),
    "scgen": dict(n_hidden=16, n_latent=4, max_epochs=1, n_threads=1),
    # No prior lookup (it would read the shared priors) and a few epochs.
    "signature_factor": dict(prior="none", max_epochs=5),
}


def _model(name: str) -> Model:
    """The registered model ``name`` with :data:`QUICK` settings (created even when its extra
    is missing: the peers import their packages only when fitted)."""
    return get_spec(name).cls(**QUICK.get(name, {}))


#: Every registered model, of every kind.
REGISTERED = list(available().index)
#: Those whose packages are installed (every model without a pip extra).
INSTALLED = [name for name in REGISTERED if get_spec(name).installed]


def test_every_registered_model_is_checked() -> None:
    kinds = {get_spec(name).predicts for name in REGISTERED}
    assert kinds == {"cells", "pseudobulk", "signatures"}
    assert {"nearest_dose", "transition", "low_rank", "signature_factor"} <= set(REGISTERED)


@parametrize_with_checks([_model(name) for name in REGISTERED])
def test_registered_models_follow_the_contract(model: Model, check) -> None:
    check(model)


# --- save / load in a fresh process ---------------------------------------------------------------

_ROUNDTRIP = """
import sys
from pathlib import Path
import anndata as ad, numpy as np, pandas as pd
from celltwin.models import SignatureModel, load
root = Path(sys.argv[1])
q = np.load(root / "query.npz")
obs = pd.DataFrame({"context": q["context"], "perturbation": q["perturbation"]},
                   index=[f"c{i}" for i in range(len(q["context"]))])
query = ad.AnnData(q["X"], obs=obs, var=pd.DataFrame(index=q["genes"]))
for name in sys.argv[2:]:
    model = load(root / name)
    if isinstance(model, SignatureModel):
        pred = model.predict(conditions=[tuple(c) for c in q["pairs"]])
    else:
        pred = model.predict(query, conditions=[tuple(c) for c in q["conditions"]], n_cells=6,
                             seed=1)
    np.savez(root / f"{name}.npz", X=pred.X, perturbation=pred.obs["perturbation"].to_numpy(str),
             kind=np.array(pred.uns["celltwin"]["prediction"]["kind"]))
"""


def _predict(model: Model):
    if isinstance(model, SignatureModel):
        return model.predict(conditions=signature_data().seen)
    data = cell_data()
    return model.predict(data.adata, conditions=data.seen, n_cells=6, seed=1)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, dict[str, Model]]:
    """Every installed registered model fitted and saved, and its predictions from a fresh
    Python process."""
    root = tmp_path_factory.mktemp("models")
    data = cell_data()
    adata = data.adata
    fitted = {}
    for name in INSTALLED:
        model = _model(name)
        fitted[name] = model.fit(
            signature_data().scores if isinstance(model, SignatureModel) else adata
        )
        fitted[name].save(root / name)
    np.savez(
        root / "query.npz",
        X=adata.X.toarray(),
        context=adata.obs["context"].to_numpy(str),
        perturbation=adata.obs["perturbation"].to_numpy(str),
        genes=np.array(adata.var_names, dtype=str),
        conditions=np.array(data.seen, dtype=str),
        pairs=np.array(signature_data().seen, dtype=str),
    )
    subprocess.run(
        [sys.executable, "-c", _ROUNDTRIP, str(root), *fitted],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root, fitted


@pytest.mark.parametrize("name", INSTALLED)
def test_save_load_round_trip_in_a_fresh_process(name: str, saved) -> None:
    root, fitted = saved
    expected = _predict(fitted[name])
    got = np.load(root / f"{name}.npz")
    np.testing.assert_array_equal(got["X"], expected.X)
    np.testing.assert_array_equal(got["perturbation"], expected.obs["perturbation"].to_numpy(str))
    assert str(got["kind"]) == get_spec(name).predicts
