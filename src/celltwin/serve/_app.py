"""The FastAPI application: routes that parse, call :mod:`._state` / :mod:`._screen`, respond.

FastAPI, starlette and pydantic are imported inside :func:`create_app` (the ``serve`` extra).
Route functions are plain ``def``: FastAPI runs them on its worker threads, never on the event
loop, and every model call inside them takes the model's lock (:meth:`ServedModel.effects_of`).
Request bodies are typed with the pydantic classes of :func:`._schemas.schemas` by setting the
annotation when the route is added (:func:`_body`), which keeps the classes out of import time.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from anndata import AnnData

from ._jobs import JobManager, JobsFull, Runner
from ._schemas import schemas
from ._screen import ScreenJob, run_screen, screen_job
from ._security import Guard
from ._state import ApiError, ServedModel, effect_rows, search

__all__ = ["API_PREFIX", "create_app"]

#: Every API route lives under this versioned prefix.
API_PREFIX = "/api/v1"
SERVE_EXTRA = "pip install 'celltwin[serve]'"
_JOB_ID = r"^[0-9a-f]{32}$"


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, all with the ``ErrorBody`` shape."""
    return {code: {"model": schemas().ErrorBody} for code in (*codes, 401, 413)}


def _body(endpoint: Callable[..., Any], **annotations: Any) -> Callable[..., Any]:
    """Give ``endpoint``'s parameters their pydantic classes (read by FastAPI's signature)."""
    endpoint.__annotations__.update(annotations)
    return endpoint


def create_app(
    model_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | AnnData | None = None,
    token: str | None = None,
    max_body: int = 1_000_000,
    max_candidates: int = 50_000,
    n_threads: int | None = 2,
    workers: int = 2,
    max_jobs: int = 100,
    cache_size: int = 1024,
    screen_runner: Runner | None = None,
) -> Any:
    """The HTTP API of a saved model (a ``fastapi.FastAPI`` application).

    Parameters
    ----------
    model_dir
        A folder written by :meth:`celltwin.models.Model.save` (JSON + safetensors: loading it
        runs no code). Loaded once, here.
    data
        Control cells of the contexts to answer for (an ``.h5ad`` path or AnnData), needed by
        cell models such as ``transition``; default ``MODEL_DIR/controls.h5ad`` when present.
    token
        When given, every route except ``/health`` (and the page) needs the header
        ``Authorization: Bearer <token>``; others get 401.
    max_body
        Largest request body in bytes (413 above it).
    max_candidates
        Most candidates of one screen (422 above it).
    n_threads
        Torch threads (``None``: leave torch's setting).
    workers, max_jobs
        Screen jobs run at once, and jobs kept (finished ones are forgotten oldest first).
    cache_size
        Single-condition predictions kept (deterministic, so asked again they are answered
        without the model); 0 keeps none.
    screen_runner
        ``runner(ScreenJob, progress) -> DataFrame`` replacing the screen engine (for tests).

    Returns
    -------
    fastapi.FastAPI
        The application; the API lives under ``/api/v1`` (schema at ``/api/v1/openapi.json``).
    """
    try:
        from fastapi import APIRouter, FastAPI
    except ImportError as err:
        raise ImportError(f"celltwin.serve needs FastAPI: {SERVE_EXTRA}") from err
    if n_threads is not None:
        import torch

        torch.set_num_threads(n_threads)
    state = ServedModel.load(model_dir, data=data, cache_size=cache_size)
    runner: Runner = screen_runner or partial(run_screen, state)
    jobs = JobManager(runner, workers=workers, max_jobs=max_jobs)
    app = FastAPI(
        title="celltwin", version="1", openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs", redoc_url=None,
        description="Ask a celltwin model: predictions, screens and explanations.",
    )  # fmt: skip
    app.state.served, app.state.jobs = state, jobs
    app.router.add_event_handler("shutdown", jobs.shutdown)
    router = APIRouter(prefix=API_PREFIX)
    _model_routes(router, state)
    _job_routes(router, state, jobs, max_candidates, check=screen_runner is None)
    app.include_router(router)
    _error_handlers(app)
    if importlib.util.find_spec(f"{__package__}._page") is not None:
        page = importlib.import_module(f"{__package__}._page")
        page.mount_page(app, api_prefix=API_PREFIX)
    app.add_middleware(
        Guard, token=token, max_body=max_body, protected=API_PREFIX,
        open_paths=frozenset({f"{API_PREFIX}/health"}),
    )  # fmt: skip
    return app


def _error_handlers(app: Any) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def api_error(request: Any, err: ApiError) -> Any:
        return JSONResponse(err.body(), status_code=err.status)

    def invalid(request: Any, err: RequestValidationError) -> Any:
        problems = []
        for e in err.errors():
            if e.get("type") == "json_invalid":
                at = e.get("loc", ("body", "?"))[-1]
                problems.append(f"malformed JSON at character {at}: {e.get('msg', '')}")
                continue
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
        first: dict[str, Any] = next(iter(err.errors()), {})
        loc = [str(p) for p in first.get("loc", ()) if p != "body" and not isinstance(p, int)]
        body = ApiError(
            422,
            "invalid request: " + "; ".join(problems)[:2000],
            field=".".join(loc[1:] if loc[:1] == ["query"] else loc) or None,
        )
        return JSONResponse(body.body(), status_code=422)

    def http_error(request: Any, err: HTTPException) -> Any:
        # FastAPI answers 400 for a body it cannot decode (not UTF-8): malformed JSON too.
        status = 422 if err.status_code == 400 else err.status_code
        detail = "malformed JSON body" if status == 422 else str(err.detail)
        return JSONResponse(ApiError(status, detail).body(), status_code=status,
                            headers=getattr(err, "headers", None))  # fmt: skip

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)


def _model_routes(router: Any, state: ServedModel) -> None:
    from fastapi import Query

    s = schemas()
    trained = set(state.perturbations)
    names = state.perturbations + [f for f in state.universe() if f not in trained]
    upper = [n.upper() for n in names]
    genes = state.genes
    genes_upper = [g.upper() for g in genes]

    def health() -> Any:
        return {"status": "ok", "model": state.model.name}

    def model() -> Any:
        return state.info()

    def find_genes(q: str = Query("", max_length=100), limit: int = Query(20, ge=1, le=200)) -> Any:
        hits = search(genes, q, limit, upper=genes_upper)
        return {"query": q, "items": [{"name": g, "kind": "readout"} for g in hits]}

    def find_perturbations(
        q: str = Query("", max_length=100), limit: int = Query(20, ge=1, le=200)
    ) -> Any:
        hits = search(names, q, limit, upper=upper)
        items = [{"name": h, "kind": "trained" if h in trained else "prior"} for h in hits]
        return {"query": q, "items": items}

    def predict(body: Any) -> Any:
        context = state.check_context(body.context)
        perturbation = state.canonical(body.perturbation)
        dose = state.check_dose(perturbation, body.dose)
        rows = effect_rows(state.effects(context, perturbation, dose), body.top)
        x = np.nan_to_num(np.asarray([v if v is not None else 0.0 for v in rows["effect"]]))
        activities = state.activities(x, body.top)
        return {
            "context": context, "perturbation": perturbation, "dose": dose, **rows,
            "regulators": activities.get("dorothea", []),
            "pathways": activities.get("progeny", []),
        }  # fmt: skip

    def explain(body: Any) -> Any:
        return _explain(state, body)

    get, post = router.get, router.post
    get("/health", response_model=s.Health)(health)
    get("/model", response_model=s.ModelInfo, responses=_errors())(model)
    get("/genes", response_model=s.SearchResult, responses=_errors(422))(find_genes)
    get("/perturbations", response_model=s.SearchResult, responses=_errors(422))(find_perturbations)
    post("/predict", response_model=s.Prediction, responses=_errors(422))(
        _body(predict, body=s.PredictRequest)
    )
    post("/explain", response_model=s.Explanation, responses=_errors(422))(
        _body(explain, body=s.ExplainRequest)
    )


#: Prior networks of the regulatory paths: DoRothEA only; with STRING a path search took 14 s
#: per request on the 2-core machine (1 s without), too long to wait for in a page.
EXPLAIN_NETWORKS = ("dorothea",)


def _explain(state: ServedModel, body: Any) -> dict[str, Any]:
    """Regulator/pathway activities (decoupler), Hallmark enrichment and regulatory paths
    (DoRothEA) of one prediction, by :func:`celltwin.explain.explain`."""
    from ..explain import explain

    context = state.check_context(body.context)
    perturbation = state.canonical(body.perturbation)
    dose = state.check_dose(perturbation, body.dose)
    effects = state.effects(context, perturbation, dose)
    rows = effect_rows(effects, body.top)
    frame = effects.to_df()
    frame.index = [f"{context}|{perturbation}|{dose}"]
    try:
        found = explain(frame.fillna(0.0), network=EXPLAIN_NETWORKS, n_genes=min(body.top, 20))
    except ValueError as err:
        raise ApiError(422, f"cannot explain {perturbation!r}: {err}") from None
    except FileNotFoundError as err:  # the server's prior files, not the request, are missing
        raise ApiError(
            503,
            f"this server has no prior-knowledge files to explain with ({err}). Fix (on the "
            "server): set CELLTWIN_SHARED or run `celltwin data fetch dorothea`.",
        ) from None
    scored = {}
    for net, act in found.activity.items():
        row = act.scores.iloc[0]
        order = row.abs().sort_values(ascending=False).index[: body.top]
        scored[net] = [{"name": str(k), "score": float(row[k])} for k in order]
    sets: list[dict[str, Any]] = []
    if found.enrichment is not None and len(found.enrichment.ora):
        ora = found.enrichment.ora.sort_values("pvalue").head(body.top)
        sets = [
            {"set": str(r.set), "direction": str(r.direction), "overlap": int(r.overlap),
             "pvalue": float(r.pvalue), "fdr": float(r.fdr)}
            for r in ora.itertuples()
        ]  # fmt: skip
    paths = []
    if len(found.paths):
        for r in found.paths[found.paths["found"].astype(bool)].head(body.top).itertuples():
            paths.append({"source": str(r.source), "gene": str(r.gene), "path": str(r.path),
                          "sign": str(r.sign), "length": int(r.length)})  # fmt: skip
    return {
        "context": context, "perturbation": perturbation, "top_genes": rows["top_genes"],
        "regulators": scored.get("dorothea", []), "pathways": scored.get("progeny", []),
        "gene_sets": sets, "paths": paths, "notes": list(found.notes),
    }  # fmt: skip


def _job_routes(
    router: Any, state: ServedModel, jobs: JobManager, max_candidates: int, *, check: bool
) -> None:
    from fastapi import Path
    from fastapi.responses import Response

    s = schemas()
    job_id_path = Path(pattern=_JOB_ID, description="Id returned by POST /screen.")

    def submit(body: Any) -> Any:
        job = screen_job(
            state, context=body.context, genes=body.candidates.genes,
            all_genes=body.candidates.all, pairs=body.candidates.pairs,
            objective=body.objective.name, params=body.objective.params, top=body.top,
            max_candidates=max_candidates, **({} if check else {"check": None}),
        )  # fmt: skip
        try:
            created = jobs.submit(job)
        except JobsFull as err:
            raise ApiError(429, str(err)) from None
        return {"job_id": created.id, "status": created.status, "n_candidates": job.n_candidates}

    def status(job_id: str = job_id_path) -> Any:
        return _job_status(jobs, job_id)

    def csv(job_id: str = job_id_path) -> Any:
        snap = _snapshot(jobs, job_id)
        if snap["status"] != "done":
            raise ApiError(409, f"job {job_id} is {snap['status']}, not done: no table yet")
        text = snap["result"].to_csv(index=False)
        headers = {"content-disposition": f'attachment; filename="screen-{job_id[:8]}.csv"'}
        return Response(text, media_type="text/csv", headers=headers)

    def cancel(job_id: str = job_id_path) -> Any:
        if not jobs.cancel(job_id):
            _snapshot(jobs, job_id)  # 404
        return _job_status(jobs, job_id)

    router.post("/screen", status_code=202, response_model=s.JobCreated,
                responses=_errors(422, 429, 501))(_body(submit, body=s.ScreenRequest))  # fmt: skip
    router.get("/jobs/{job_id}", response_model=s.JobStatus, responses=_errors(404, 422))(status)
    router.get(
        "/jobs/{job_id}/csv", response_class=Response, responses={
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
            **_errors(404, 409, 422),
        },
    )(csv)  # fmt: skip
    router.delete("/jobs/{job_id}", response_model=s.JobStatus, responses=_errors(404, 422))(cancel)


def _snapshot(jobs: JobManager, job_id: str) -> dict[str, Any]:
    snap = jobs.snapshot(job_id)
    if snap is None:
        raise ApiError(404, f"no job {job_id!r} (unknown, or forgotten: the server keeps "
                       f"the last {jobs.max_jobs})", field="job_id")  # fmt: skip
    return snap


def _job_status(jobs: JobManager, job_id: str) -> dict[str, Any]:
    snap = _snapshot(jobs, job_id)
    table, request = snap.pop("result"), snap.pop("request")
    rows = None
    if table is not None:
        top = request.top if isinstance(request, ScreenJob) else 50
        # through JSON: NaN -> null, numpy scalars -> plain numbers
        rows = json.loads(table.head(top).to_json(orient="records", double_precision=15))
    return {**snap, "n_rows": None if table is None else len(table), "rows": rows}
