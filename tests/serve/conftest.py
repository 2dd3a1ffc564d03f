"""A tiny ``transition`` model fitted on generated cells, saved with its control cells."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from celltwin._keys import CONTROL, PERTURBATION, SPLIT
from celltwin.models import get_model
from celltwin.testing._data import CellData, cell_data

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

TINY = {"n_members": 2, "max_steps": 40, "hidden": 16, "n_latent": 8, "cells": 16}


@pytest.fixture(scope="session")
def data() -> CellData:
    return cell_data()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, data) -> Path:
    """A saved model folder with ``controls.h5ad`` beside the model (what ``serve`` reads)."""
    adata = data.adata
    model = get_model("transition", progress=False, **TINY).fit(
        adata[adata.obs[SPLIT] == "train"].copy()
    )
    folder = tmp_path_factory.mktemp("served") / "model"
    model.save(folder)
    controls = adata[adata.obs[PERTURBATION].astype(str) == CONTROL].copy()
    controls.write_h5ad(folder / "controls.h5ad")
    return folder


@pytest.fixture(scope="session")
def app(model_dir):
    from celltwin.serve import create_app

    return create_app(model_dir)


def make_client(app):
    """Starlette's TestClient (it warns once that it prefers httpx2 to httpx: not our concern)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app)


@pytest.fixture(scope="session")
def client_of():
    """``client_of(app)``: a test client of another application (a context manager)."""
    return make_client


@pytest.fixture(scope="session")
def client(app):
    with make_client(app) as c:
        yield c
