"""The request and response bodies of the API, as pydantic models (they make the OpenAPI schema).

pydantic is an optional dependency (the ``serve`` extra), so the classes are built on first use
by :func:`schemas` rather than at import time; ``import celltwin.serve`` needs no web stack.
"""

from functools import cache
from types import SimpleNamespace
from typing import Any

__all__ = ["MAX_DOSE", "MAX_TEXT", "schemas"]

#: Longest context or perturbation string accepted.
MAX_TEXT = 500
#: Largest dose a request may carry (a model may refuse smaller ones, see ``check_dose``).
MAX_DOSE = 1e6


@cache
def schemas() -> SimpleNamespace:
    """Every body model by name (``schemas().PredictRequest``, ...)."""
    from pydantic import BaseModel, ConfigDict, Field

    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid")

    context_field = Field(
        min_length=1, max_length=MAX_TEXT, description="A context the model knows."
    )
    perturbation_field = Field(
        min_length=1, max_length=MAX_TEXT,
        description="A perturbation: a gene symbol, a drug, or a pair 'A+B'.",
    )  # fmt: skip

    class ErrorBody(BaseModel):
        detail: str = Field(description="What was wrong and how to fix it.")
        field: str | None = Field(None, description="The request field at fault.")
        suggestions: list[str] = Field([], description="Names probably meant (did you mean).")
        allowed: list[str] = Field([], description="The accepted values, when few.")

    class Health(BaseModel):
        status: str
        model: str

    class ModelInfo(BaseModel):
        name: str
        contexts: list[str]
        perturbations: list[str] = Field(description="Trained perturbations.")
        n_genes: int
        n_perturbations: int
        n_representable: int = Field(description="Single perturbations the model can predict.")
        priors: str = Field(description="Features of unmeasured perturbations ('' if none).")
        represents_prior_genes: bool
        activity_nets: list[str]
        doses: dict[str, float] = Field(description="Largest measured dose per perturbation.")
        benchmark: dict[str, Any] | None

    class SearchHit(BaseModel):
        name: str
        kind: str = Field(description="'trained', 'prior' (representable) or 'readout'.")

    class SearchResult(BaseModel):
        query: str
        items: list[SearchHit]

    class PredictRequest(Body):
        context: str = context_field
        perturbation: str = perturbation_field
        dose: float | None = Field(None, ge=0, le=MAX_DOSE)
        top: int = Field(20, ge=1, le=500, description="Top genes and activities returned.")

    class GeneEffect(BaseModel):
        gene: str
        effect: float | None
        lower: float | None
        upper: float | None

    class Score(BaseModel):
        name: str
        score: float

    class Prediction(BaseModel):
        context: str
        perturbation: str = Field(description="Canonical label (pairs sorted 'A+B').")
        dose: str
        source: str = Field(description="Where the answer came from (measured, prior, ...).")
        in_domain: float | None = Field(description="1: as close as training; < 0.05: far out.")
        genes: list[str]
        effect: list[float | None]
        lower: list[float | None]
        upper: list[float | None]
        top_genes: list[GeneEffect]
        regulators: list[Score] = Field(description="DoRothEA ulm t-values, strongest first.")
        pathways: list[Score] = Field(description="PROGENy ulm t-values, strongest first.")

    return SimpleNamespace(
        Body=Body, ErrorBody=ErrorBody, Health=Health, ModelInfo=ModelInfo,
        SearchHit=SearchHit, SearchResult=SearchResult, PredictRequest=PredictRequest,
        GeneEffect=GeneEffect, Score=Score, Prediction=Prediction,
        **_job_schemas(Body, GeneEffect, Score),
    )  # fmt: skip


def _job_schemas(body: Any, gene_effect: Any, score: Any) -> dict[str, Any]:
    """Screen, job and explanation bodies."""
    from pydantic import ConfigDict, Field

    class Candidates(body):
        genes: list[str] = Field([], description="Single perturbations to screen.")
        all: bool = Field(False, description="Every single perturbation the model can predict.")
        pairs: list[str] = Field([], description="Every pair of these is screened.")

    class ObjectiveSpec(body):
        name: str = Field(min_length=1, max_length=100)
        params: dict[str, Any] = Field({}, description="Keyword arguments of the objective.")

    class ScreenRequest(body):
        context: str = Field(min_length=1, max_length=500)
        candidates: Candidates
        objective: ObjectiveSpec
        top: int = Field(50, ge=1, le=1000, description="Rows returned by GET /jobs/{id}.")

    class JobCreated(body):
        job_id: str
        status: str
        n_candidates: int

    class ScreenRow(body):
        model_config = ConfigDict(extra="allow")
        rank: int
        label: str
        perturbation: str
        score: float | None

    class JobStatus(body):
        job_id: str
        status: str = Field(description="queued, running, done, failed or cancelled.")
        progress: float = Field(ge=0, le=1)
        message: str
        created: float
        started: float | None
        finished: float | None
        n_rows: int | None = Field(description="Rows of the whole ranked table (CSV).")
        rows: list[ScreenRow] | None

    class ExplainRequest(body):
        context: str = Field(min_length=1, max_length=500)
        perturbation: str = Field(min_length=1, max_length=500)
        dose: float | None = Field(None, ge=0, le=MAX_DOSE)
        top: int = Field(20, ge=1, le=500)

    class GeneSet(body):
        set: str
        direction: str
        overlap: int
        pvalue: float
        fdr: float

    class RegulatoryPath(body):
        source: str = Field(description="The perturbed gene.")
        gene: str = Field(description="An affected gene it reaches.")
        path: str = Field(description="Genes along the path, ' > '-joined.")
        sign: str
        length: int

    class Explanation(body):
        context: str
        perturbation: str
        top_genes: list[gene_effect]
        regulators: list[score]
        pathways: list[score]
        gene_sets: list[GeneSet]
        paths: list[RegulatoryPath] = Field(description="Sign-agreeing DoRothEA paths found.")
        notes: list[str]

    return {
        "Candidates": Candidates, "ObjectiveSpec": ObjectiveSpec, "ScreenRequest": ScreenRequest,
        "JobCreated": JobCreated, "ScreenRow": ScreenRow, "JobStatus": JobStatus,
        "ExplainRequest": ExplainRequest, "GeneSet": GeneSet, "Explanation": Explanation,
        "RegulatoryPath": RegulatoryPath,
    }  # fmt: skip
