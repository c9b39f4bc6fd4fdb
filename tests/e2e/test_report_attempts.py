"""The report says how many times each object was tried, copied objects too: a copy that
the destination refused once, transiently, and that went through the second time reads
attempts 2, the others 1."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from launcher.embedded import EmbeddedS3
from tests.connection_forms import connection_body
from tests.stack import RunningCstor, s3_client_for
from tests.store_proxy import Seen, StoreProxy

KEYS = ["a", "b", "c"]


@pytest.fixture
def destination_proxy(s3_destination: EmbeddedS3) -> Iterator[StoreProxy]:
    """The destination's rclone behind a proxy that counts (and may refuse) requests."""
    with StoreProxy(s3_destination.endpoint).running() as proxy:
        yield proxy


def first_put_of(path: str) -> Callable[[Seen], bool]:
    """Picks the first PUT of the object at `path`, and no request after it."""
    refused = threading.Event()

    def pick(seen: Seen) -> bool:
        if seen.method != "PUT" or seen.path != path or seen.query or refused.is_set():
            return False
        refused.set()
        return True

    return pick


def test_a_copy_refused_once_then_copied_reports_two_attempts_and_the_others_one(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    destination_proxy: StoreProxy,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given three objects, and a destination (behind a proxy) that answers the first PUT
    # of "b" with 500 InternalError, as a store does when it cannot take a write just then
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for key in KEYS:
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=key, Body=key.encode())
    destination_proxy.refuse = first_put_of(f"/{dest_bucket}/b")
    response = cstor.api.post(
        "/api/v1/connections",
        json=connection_body(s3_destination, "dest", endpoint=destination_proxy.url),
    )
    assert response.status_code == 201, response.text

    # When they are migrated
    migration_id = cstor.migrate(
        cstor.connect(s3_source, "source"), source_bucket, response.json()["id"], dest_bucket
    )
    state = cstor.wait_finished(migration_id)
    assert (state["status"], state["objects_copied"]) == ("completed", 3), state

    # Then "b" was sent twice, and the report says so: 2 attempts for it, 1 for the others
    sent = destination_proxy.count(lambda seen: seen.method == "PUT" and seen.path.endswith("/b"))
    assert sent == 2
    report = cstor.api.get(f"/api/v1/migrations/{migration_id}/report.json")
    assert report.status_code == 200, report.text
    assert {row["key"]: (row["status"], row["attempts"]) for row in report.json()} == {
        "a": ("copied", 1),
        "b": ("copied", 2),
        "c": ("copied", 1),
    }
