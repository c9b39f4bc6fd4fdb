"""How the api answers each kind of error, without a server: the use cases raise the
domain's errors, and one mapping gives each its status and its problem+json body, the
field at fault named with where it came from (body, query or path)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar import Request
from litestar.exceptions import NotAuthorizedException
from litestar.testing import RequestFactory

from cstor.domain.exceptions import (
    Conflict,
    InvalidRequest,
    MigrationStateError,
    NotFound,
    Unavailable,
)
from cstor.secrets.store import SecretStoreError
from services.api.problems import answer_error, status_of, unprocessable_field


def request(
    path_params: dict[str, Any] | None = None, query: dict[str, str] | None = None
) -> Request[Any, Any, Any]:
    made = RequestFactory().get("/api/v1/x", query_params=query or {})
    scope: dict[str, Any] = dict(made.scope)
    scope["path_params"] = path_params or {}
    return Request(scope)  # type: ignore[arg-type]


def body_of(error: Exception, req: Request[Any, Any, Any] | None = None) -> dict[str, Any]:
    response = answer_error(req or request(), error)
    assert response.media_type == "application/problem+json"
    body: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(response.content))
    assert body["status"] == response.status_code
    return body


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("The source bucket 'x' cannot be used: no such bucket."), 422),
        (NotFound("Migration 1 does not exist."), 404),
        (Conflict("Connection 'a' is used by the migration 'b' (running)."), 409),
        (MigrationStateError("migration 1 is completed; it cannot pause"), 409),
        (Unavailable("The connection was not saved: the secret store cannot be reached"), 503),
        (SecretStoreError("AWS Secrets Manager denied it"), 503),
        (NotAuthorizedException("Sign in."), 401),
    ],
)
def test_each_kind_of_error_has_one_status_and_keeps_its_words(
    error: Exception, status: int
) -> None:
    # When a use case raises it
    body = body_of(error)

    # Then it is answered with its kind's status and its own message, nothing else
    assert status_of(error) == status
    assert body["status"] == status
    assert body["detail"] == (getattr(error, "detail", None) or str(error))
    assert "errors" not in body


def test_an_error_nobody_expected_is_a_500_that_shows_nothing_of_it() -> None:
    body = body_of(KeyError("secret internals"))

    assert status_of(KeyError()) is None
    assert body["status"] == 500
    assert "secret internals" not in body["detail"]


def test_a_refused_field_is_named_in_the_detail_and_in_errors() -> None:
    # Given a rule that names its field and another field its reason mentions
    error = InvalidRequest(
        "it is smaller than filters.min_size.",
        field="filters.max_size",
        mentions=("filters.min_size",),
    )

    # Then the detail reads "field: reason" and errors names the field in the body
    assert body_of(error) == {
        "type": "about:blank",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "filters.max_size: it is smaller than filters.min_size.",
        "errors": [
            {
                "message": "it is smaller than filters.min_size.",
                "key": "filters.max_size",
                "source": "body",
            }
        ],
    }


def test_a_refused_field_says_whether_it_came_in_the_path_or_the_query() -> None:
    bucket = InvalidRequest("'a..b' is not a bucket name S3 allows.", field="bucket")
    in_path = body_of(bucket, request(path_params={"bucket": "a..b"}))
    in_query = body_of(bucket, request(query={"bucket": "a..b"}))

    assert in_path["errors"][0]["source"] == "path"
    assert in_query["errors"][0]["source"] == "query"
    assert in_path["detail"] == "bucket: 'a..b' is not a bucket name S3 allows."


def test_the_edge_names_its_field_and_source_itself() -> None:
    error = unprocessable_field("name", "contains the NUL character", "query")

    assert body_of(error)["errors"] == [
        {"message": "contains the NUL character", "key": "name", "source": "query"}
    ]
    assert body_of(error)["detail"] == "name: contains the NUL character"


def test_a_refusal_is_worded_with_any_names_for_its_fields() -> None:
    # Given a refusal naming two fields, and one that names its own field in its sentence
    smaller = InvalidRequest(
        "it is smaller than filters.min_size.",
        field="filters.max_size",
        mentions=("filters.min_size",),
    )
    required = InvalidRequest(
        "source_bucket is required.", field="source_bucket", mentions=("source_bucket",)
    )
    labels = {"filters.max_size": "Largest size", "filters.min_size": "Smallest size"}

    # Then the API's words keep the paths, a form's use its labels, with no parsing
    assert str(smaller) == "filters.max_size: it is smaller than filters.min_size."
    assert smaller.named(labels.__getitem__) == "Largest size: it is smaller than Smallest size."
    assert str(required) == "source_bucket is required."
    assert required.named(lambda path: "Source bucket") == "Source bucket is required."
    assert str(InvalidRequest("No field here.")) == "No field here."
