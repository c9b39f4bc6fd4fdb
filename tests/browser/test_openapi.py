"""The OpenAPI document and its Swagger page, served by a real running api: the document
answers 200 and is valid OpenAPI, documents every REST error as problem details, and the
Swagger page shows every operation in Debian's Chromium with nothing fetched from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.stack import RunningCstor

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def document(module_cstor: RunningCstor) -> dict[str, Any]:
    response = module_cstor.api.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def test_the_openapi_document_answers_and_is_valid(document: dict[str, Any]) -> None:
    # Given the document a running api serves (the fixture checked it answered 200)
    # Then it is valid OpenAPI, and it has the REST API's operations
    validate(document)
    assert document["openapi"].startswith("3.1")
    found = {(method, path) for method, path, _ in operations(document)}
    assert ("POST", "/api/v1/migrations") in found
    assert ("GET", "/api/v1/migrations/{migration_id}/objects") in found
    assert all(path.startswith("/api/") for _, path in found)


def test_every_error_is_documented_as_problem_details(document: dict[str, Any]) -> None:
    # Given every REST operation of the document
    for method, path, operation in operations(document):
        responses = operation["responses"]
        errors = {status: r for status, r in responses.items() if status.startswith(("4", "5"))}
        # Then each error it documents is problem details (what the api really sends)
        for status, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (method, path)
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
        # And an operation that takes a token says so, and documents the 401
        if (method, path) in {("GET", "/api/v1/health"), ("POST", "/api/v1/users")}:
            assert "security" not in operation
            assert "401" not in errors
            continue
        assert {"token": []} in operation["security"], (method, path)
        assert "401" in errors, (method, path)
        # And one with a path parameter documents the 404 of an id that is not the caller's
        if "{" in path:
            assert "404" in errors, (method, path)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


def test_an_error_answer_is_the_documented_problem(
    module_cstor: RunningCstor, document: dict[str, Any]
) -> None:
    # When a request is refused (an id that does not exist)
    response = module_cstor.api.get("/api/v1/migrations/00000000-0000-0000-0000-000000000000")
    # Then the answer is problem details with the fields the document requires
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    required = document["components"]["schemas"]["Problem"]["required"]
    assert set(required) <= set(response.json())


@pytest.mark.browser
def test_the_swagger_page_shows_the_operations_offline(
    chromium: Any, module_cstor: RunningCstor, document: dict[str, Any]
) -> None:
    base = f"http://127.0.0.1:{module_cstor.settings.api_port}"
    requested: list[str] = []
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        # When the Swagger page is opened
        page.goto(f"{base}/schema/swagger")
        # Then it shows every operation of the document, with its summary
        page.wait_for_selector(".opblock", timeout=20_000)
        shown = page.locator(".opblock").count()
        text = page.locator("#swagger-container").inner_text()
    finally:
        context.close()
    assert shown == len(list(operations(document)))
    assert "Start a migration" in text
    assert "Page through a migration's objects by key" in text
    # And everything it loaded came from the api itself: no CDN was needed
    assert requested
    assert all(url.startswith(base) for url in requested), requested
