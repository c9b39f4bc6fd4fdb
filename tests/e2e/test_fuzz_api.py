"""Fuzz every REST operation from the api's own OpenAPI document (schemathesis), against a
real running stack, with a signed-in API token: no answer is a 5xx, every error is
problem details, every answer is one the document describes (status, headers, body), an
invalid request is refused, and an operation that needs a token refuses a request without.

Valid and invalid requests are drawn deterministically (derandomized), a bounded number per
operation, so a CI run is reproducible and takes about a minute and a half.
"""

from __future__ import annotations

import base64
import os
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cstor.settings import Settings
from launcher.embedded import EmbeddedPostgres, EmbeddedS3, free_port, start_nats
from services.api.app import create_app
from tests.stack import RunningCstor, create_database, s3_client_for, start_cstor

# CI's bound; CSTOR_FUZZ_EXAMPLES=500 digs deeper by hand.
EXAMPLES_PER_OPERATION = int(os.environ.get("CSTOR_FUZZ_EXAMPLES", "25"))
PRESETS_ON_THE_INTERNET = {"aws", "lyve"}
THROTTLED_SIGN_IN = "POST /api/v1/tokens"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


@dataclass(frozen=True)
class Target:
    """The running stack, and values that exist in it for the fuzzer to draw from."""

    cstor: RunningCstor
    token: str
    endpoints: list[str]
    ids: dict[str, list[str]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def target(
    embedded_postgres: EmbeddedPostgres,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    with start_nats(data_dir / "nats", free_port()) as nats:
        for cstor in start_cstor(create_database(embedded_postgres), nats.url, data_dir):
            yield seeded(cstor, s3_source, s3_destination)


def seeded(cstor: RunningCstor, source: EmbeddedS3, destination: EmbeddedS3) -> Target:
    """Two connections, a finished migration between them and one that stays running (at 1
    byte/s), so the fuzzer's ids exist, and the connections outlive its DELETEs (409)."""
    source_bucket, destination_bucket = (f"fuzz-{uuid.uuid4().hex[:12]}" for _ in range(2))
    s3_client_for(source).create_bucket(Bucket=source_bucket)
    s3_client_for(destination).create_bucket(Bucket=destination_bucket)
    for n in range(3):
        body = b"x" * 10**n
        s3_client_for(source).put_object(Bucket=source_bucket, Key=f"k{n}", Body=body)
    source_id = cstor.connect(source, "fuzz-source")
    destination_id = cstor.connect(destination, "fuzz-destination")
    finished = cstor.migrate(source_id, source_bucket, destination_id, destination_bucket)
    assert cstor.wait_finished(finished)["status"] == "completed"
    running = cstor.migrate(
        source_id,
        source_bucket,
        destination_id,
        destination_bucket,
        destination_prefix="slow/",
        limits={"bandwidth_bytes_per_second": 1},
    )
    cstor.wait_until(running, lambda state: state["status"] == "running")
    port = source.endpoint.rsplit(":", 1)[1]
    return Target(
        cstor=cstor,
        token=cstor.api.headers["Authorization"].removeprefix("Bearer "),
        # Endpoints a fuzzed connection may name: all on 127.0.0.1, some of them wrong.
        endpoints=[
            source.endpoint,
            destination.endpoint,
            f"http://user:password@127.0.0.1:{port}",
            "http://127.0.0.1:1",
            "https://127.0.0.1:1/some/path",
        ],
        ids={
            "connections": [source_id, destination_id],
            "migrations": [finished, running],
            "buckets": [source_bucket, destination_bucket],
            "access_keys": [source.access_key, destination.access_key],
            "secret_keys": [source.secret_key, destination.secret_key],
        },
    )


def drawn_from(dictionary: str, probability: float = 0.5) -> dict[str, Any]:
    return {"dictionary": dictionary, "probability": probability}


@pytest.fixture(scope="module")
def api_schema(target: Target) -> Any:
    """The document the running api serves, with values that exist for half the ids, names
    and keys the fuzzer draws, so requests get past the 404 to the code behind it."""
    config = schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {target.token}"},
            "dictionaries": {
                **{name: {"values": values} for name, values in target.ids.items()},
                "endpoints": {"values": target.endpoints},
            },
            "parameters": {
                "path.connection_id": drawn_from("connections"),
                "path.migration_id": drawn_from("migrations"),
                "path.bucket": drawn_from("buckets"),
                "body.source_connection_id": drawn_from("connections", 0.7),
                "body.destination_connection_id": drawn_from("connections", 0.7),
                "body.source_bucket": drawn_from("buckets", 0.7),
                "body.destination_bucket": drawn_from("buckets", 0.7),
                "body.access_key": drawn_from("access_keys"),
                "body.secret_key": drawn_from("secret_keys"),
                "body.endpoint": drawn_from("endpoints", 1.0),
            },
        }
    )
    base = f"http://127.0.0.1:{target.cstor.settings.api_port}"
    return schemathesis.openapi.from_url(f"{base}/schema/openapi.json", config=config)


def error_is_problem_details(ctx: Any, response: schemathesis.Response, case: Any) -> bool:
    """An error answer is RFC 9457 problem details, whatever the operation."""
    if response.status_code >= 400:
        media_type = response.headers.get("content-type", [""])[0]
        assert media_type.startswith("application/problem+json"), (
            f"{response.status_code} answered as {media_type!r}: {response.text[:300]}"
        )
    return True


def keep_on_loopback(case: Any, endpoints: list[str]) -> None:
    """The api tests a new connection by connecting to it: a fuzzed endpoint (or a provider
    preset, whose endpoints are on the internet) is replaced by one on 127.0.0.1, so the
    fuzzer never makes the api reach for another address."""
    if (case.method, case.path) != ("POST", "/api/v1/connections"):
        return
    if not isinstance(case.body, dict):
        return
    provider = case.body.get("provider")
    if isinstance(provider, str) and provider.strip().lower() in PRESETS_ON_THE_INTERNET:
        case.body["provider"] = "custom"
    endpoint = case.body.get("endpoint")
    if isinstance(endpoint, str) and endpoint not in endpoints:
        case.body["endpoint"] = endpoints[zlib.crc32(endpoint.encode()) % len(endpoints)]


def refuses_a_wrong_password(case: Any) -> None:
    """schemathesis's ignored_auth check for POST /api/v1/tokens, with its 429 allowed: that
    operation takes a password, so wrong ones from one address are throttled (a 429 after
    twenty in a minute, documented) where the check accepts only a 401 or 403."""
    wrong = base64.b64encode(b"nobody@example.com:wrong password").decode()
    for authorization in ("", f"Basic {wrong}"):
        response = case.call(headers={"Authorization": authorization}, timeout=30)
        # Refused: for the sign-in, or before it for what the request itself holds
        assert response.status_code in (400, 401, 413, 422, 429), (authorization, response.text)


def documented_operations() -> list[str]:
    """Every REST operation's label ("GET /api/v1/..."), read from the app the stack runs.

    The pytest loader that would read them from the served document at test time
    (schemathesis.pytest.from_fixture) fails on pytest 9.2 (it sets the node's private
    _nodeid), so the labels come from the same app built in-process at collection (no
    server needed); a test checks the served document has exactly these.
    """
    unused = Settings(
        database_url="postgresql://unused@127.0.0.1:1/unused",
        nats_url="nats://127.0.0.1:1",
        secret_key=Fernet.generate_key().decode(),
    )
    document = create_app(unused, relay=False).openapi_schema.to_schema()
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in ("get", "put", "post", "delete", "patch")
        if method in item
    ]


OPERATIONS = documented_operations()


def test_the_fuzzed_operations_are_the_served_ones(api_schema: Any) -> None:
    served = {result.ok().label for result in api_schema.get_all_operations()}
    assert served == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation_answers_as_documented(label: str, api_schema: Any, target: Target) -> None:
    operation = api_schema.find_operation_by_label(label)
    requests = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=requests)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: Any) -> None:
        # Given a request drawn from the operation's schema (valid or not), with a token
        keep_on_loopback(case, target.endpoints)
        # When it is sent, then its answer passes every check
        throttled = label == THROTTLED_SIGN_IN
        case.call_and_validate(
            checks=[c for c in CHECKS if not (throttled and c is ignored_auth)],
            additional_checks=[error_is_problem_details],
            timeout=30,
        )
        if throttled:
            refuses_a_wrong_password(case)

    answers_as_documented()
