"""The lincs_ljp005_a375 dataset entry: checksum, source, canonical wells."""

from __future__ import annotations

import pytest

from celltwin._settings import shared_dir
from celltwin.data import get_entry
from celltwin.data._lincs import build_lincs_doses

SRC = shared_dir() / "data" / "lincs" / "lincs_ljp005_a375_doses.h5ad"
pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SRC.is_file(), reason=f"{SRC} absent (set CELLTWIN_SHARED)"),
]


def test_dataset_entry_builds_canonical_wells_with_the_registered_shape() -> None:
    entry = get_entry("lincs_ljp005_a375")
    assert entry.sources[0].sha256 and "cmapPy" in entry.sources[0].note
    built = build_lincs_doses([SRC])
    assert built.shape == entry.shape
    obs = built.obs
    control = obs["perturbation"] == "control"
    assert control.sum() == 26 and (obs.loc[control, "dose"] == "").all()
    assert obs.loc[~control, "perturbation"].nunique() == 55
    assert (obs.loc[~control, "pert_dose_um"] > 0).all() and built.var_names.is_unique
