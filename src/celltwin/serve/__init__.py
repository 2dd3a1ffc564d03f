"""Serve a model over HTTP: a versioned JSON API (and the page that uses it) on one process.

::

    app = create_app("model/")          # a FastAPI application, for tests or your own server
    run("model/", port=8000)            # what ``celltwin serve model/`` does

The API lives under ``/api/v1`` (OpenAPI schema at ``/api/v1/openapi.json``): ``GET /health``,
``GET /model``, ``GET /genes``, ``GET /perturbations`` (search as you type), ``POST /predict``,
``POST /explain``, ``POST /screen`` (a background job) with ``GET``/``DELETE /jobs/{id}`` and
``GET /jobs/{id}/csv``. It listens on 127.0.0.1 unless a token is configured
(:func:`check_bind`); with a token every API route but ``/health`` needs
``Authorization: Bearer <token>``. Bodies, candidate lists and inputs are checked with clear
4xx answers; no file path comes from a request.

FastAPI, uvicorn and pydantic are optional: ``pip install 'celltwin[serve]'``.
"""

from ._app import API_PREFIX, create_app
from ._jobs import JOB_STATES
from ._run import run
from ._screen import ScreenJob
from ._security import MIN_TOKEN_LENGTH, check_bind, is_loopback, read_token
from ._state import CONTROLS_FILE

__all__ = [
    "API_PREFIX",
    "CONTROLS_FILE",
    "JOB_STATES",
    "MIN_TOKEN_LENGTH",
    "ScreenJob",
    "check_bind",
    "create_app",
    "is_loopback",
    "read_token",
    "run",
]
