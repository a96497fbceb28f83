"""The request and response bodies (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from lsrkit.factory import PipelineName

FilterValue = str | int | float | bool


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("text is empty (whitespace only)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchRequest(_Strict):
    text: str = Field(min_length=1, description="the query")
    pipeline: PipelineName = "hybrid+rerank"
    k: int = Field(10, ge=1, description="hits returned (at most the service's --max-k)")
    filters: dict[str, FilterValue] | None = Field(None, description="metadata field → value, all must match")

    _text = field_validator("text")(_not_blank)


class SearchHit(BaseModel):
    id: str
    score: float
    title: str
    text: str
    passage_id: str = Field(description="the passage the score comes from (what /rerank takes)")
    stage_scores: dict[str, float]


class SearchResponse(BaseModel):
    pipeline: str
    hits: list[SearchHit]
    timings_ms: dict[str, float]


class Candidate(_Strict):
    id: str = Field(min_length=1, description="a passage id of the index")
    score: Annotated[float, Field(allow_inf_nan=False)] | None = Field(None, description="first-stage score; interpolated when every candidate has one")


class RerankRequest(_Strict):
    query: str = Field(min_length=1)
    candidates: list[Candidate] = Field(min_length=1)
    k: int | None = Field(None, ge=1, description="hits returned (default: every known candidate)")

    _query = field_validator("query")(_not_blank)


class RerankHit(BaseModel):
    id: str
    score: float
    stage_scores: dict[str, float]


class RerankResponse(BaseModel):
    hits: list[RerankHit]
    unknown_ids: list[str] = Field(description="candidates the index holds no token vectors for (not ranked)")
    timings_ms: dict[str, float]


class TextsRequest(_Strict):
    texts: list[str]


class _Parameters(_Strict):
    texts: list[str] | None = None
    input: list[str] | None = None


class ParametersRequest(_Strict):
    parameters: _Parameters


class EncodeRequest(RootModel[list[str] | TextsRequest | ParametersRequest]):
    """What ml-commons' connector sends (`"request_body": "${parameters.input}"`: a JSON list of
    strings), or {"texts": [...]}, or {"parameters": {"texts"|"input": [...]}}."""

    def texts(self) -> list[str]:
        body = self.root
        if isinstance(body, list):
            return body
        if isinstance(body, TextsRequest):
            return body.texts
        return body.parameters.texts or body.parameters.input or []


TokenWeights = list[dict[str, float]]


class ErrorBody(BaseModel):
    error: str
    detail: object
