"""Bad input gets a clear 4xx with a human message, and creates nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from launcher.embedded import EmbeddedS3, free_port
from tests.connection_forms import connection_body
from tests.stack import RunningCstor


def assert_nothing_created(module_cstor: RunningCstor) -> None:
    assert module_cstor.api.get("/api/v1/connections").json() == []
    assert module_cstor.api.get("/api/v1/migrations").json() == []


def test_wrong_credentials_are_refused_with_a_clear_message(
    module_cstor: RunningCstor, s3_source: EmbeddedS3
) -> None:
    response = module_cstor.api.post(
        "/api/v1/connections", json=connection_body(s3_source, secret_key="not-the-secret")
    )
    assert response.status_code == 422
    assert "rejected" in response.json()["detail"].lower()
    assert "not-the-secret" not in response.text
    assert_nothing_created(module_cstor)


def test_an_unknown_endpoint_is_refused_quickly(
    module_cstor: RunningCstor, s3_source: EmbeddedS3
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    response = module_cstor.api.post(
        "/api/v1/connections", json=connection_body(s3_source, endpoint=closed)
    )
    assert response.status_code == 422
    assert "reach" in response.json()["detail"].lower() or "unreachable" in response.text
    assert_nothing_created(module_cstor)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"name": "x", "endpoint": "ftp://nowhere", "access_key": "a", "secret_key": "b"},
        {"name": "", "endpoint": "http://127.0.0.1:1", "access_key": "a", "secret_key": "b"},
    ],
    ids=["missing-fields", "not-http", "empty-name"],
)
def test_malformed_connections_are_400_with_the_field_named(
    module_cstor: RunningCstor, body: dict[str, str]
) -> None:
    response = module_cstor.api.post("/api/v1/connections", json=body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert_nothing_created(module_cstor)


def test_malformed_json_is_400(module_cstor: RunningCstor) -> None:
    response = module_cstor.api.post(
        "/api/v1/migrations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "Traceback" not in response.text
    assert_nothing_created(module_cstor)


def test_a_missing_bucket_or_connection_creates_no_migration(
    module_cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    source_id = module_cstor.connect(s3_source, "source")
    dest_id = module_cstor.connect(s3_destination, "destination")
    source_bucket = make_bucket(s3_source)
    try:
        missing = module_cstor.api.post(
            "/api/v1/migrations",
            json={
                "source_connection_id": source_id,
                "source_bucket": "no-such-bucket-here",
                "destination_connection_id": dest_id,
                "destination_bucket": make_bucket(s3_destination),
            },
        )
        assert missing.status_code == 422
        assert "no-such-bucket-here" in missing.json()["detail"]
        unknown = module_cstor.api.post(
            "/api/v1/migrations",
            json={
                "source_connection_id": str(uuid.uuid4()),
                "source_bucket": source_bucket,
                "destination_connection_id": dest_id,
                "destination_bucket": "whatever",
            },
        )
        assert unknown.status_code == 422
        assert "does not exist" in unknown.json()["detail"]
        assert module_cstor.api.get("/api/v1/migrations").json() == []
        assert module_cstor.api.get(f"/api/v1/migrations/{uuid.uuid4()}").status_code == 404
    finally:
        for connection_id in (source_id, dest_id):
            assert (
                module_cstor.api.delete(f"/api/v1/connections/{connection_id}").status_code == 204
            )
