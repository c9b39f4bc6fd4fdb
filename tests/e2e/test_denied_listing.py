"""Keys that may not list a bucket: refused up front, or the migration fails saying why.

Neither local S3 server enforces permissions, so this store is a small real HTTP
server that answers like S3 does to keys without s3:ListBucket.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.stack import RunningCstor

DENIED_WORDS = "Access Denied by bucket policy lock-7"
DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>" + DENIED_WORDS.encode() + b"</Message></Error>"
)
EMPTY_LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>locked</Name>'
    b"<Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys>"
    b"<IsTruncated>false</IsTruncated></ListBucketResult>"
)
ONE_OBJECT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>open</Name>'
    b"<Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>"
    b"<IsTruncated>false</IsTruncated><Contents><Key>a.txt</Key>"
    b"<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
    b'<ETag>"0cc175b9c0f1b6a831c399e269772661"</ETag><Size>1</Size>'
    b"<StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
)
BUCKETS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Owner><ID>x</ID></Owner><Buckets><Bucket><Name>locked</Name>"
    b"<CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>"
    b"</ListAllMyBucketsResult>"
)


class LockedStore(BaseHTTPRequestHandler):
    """Lists its buckets; lists the bucket `locked` only while `allow_listing` is set, and
    the bucket `open` (one object) always."""

    allow_listing = threading.Event()

    def do_GET(self) -> None:
        if self.path.startswith("/?") or self.path == "/":
            self._answer(200, BUCKETS)
        elif self.path.startswith("/open"):
            self._answer(200, ONE_OBJECT)
        elif self.allow_listing.is_set():
            self._answer(200, EMPTY_LISTING)
        else:
            self._answer(403, DENIED)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def locked_store() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), LockedStore)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    LockedStore.allow_listing.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def connect(cstor: RunningCstor, endpoint: str) -> str:
    response = cstor.api.post(
        "/api/v1/connections",
        json={
            "name": "locked",
            "endpoint": endpoint,
            "access_key": "limited-key-0001",
            "secret_key": "limited-secret",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_bucket_the_keys_may_not_list_is_refused_with_the_reason(
    cstor: RunningCstor, locked_store: str
) -> None:
    # Given keys that may list buckets but not the objects of `locked`
    connection = connect(cstor, locked_store)
    # When a migration from it is requested
    response = cstor.api.post(
        "/api/v1/migrations",
        json={
            "source_connection_id": connection,
            "source_bucket": "locked",
            "destination_connection_id": connection,
            "destination_bucket": "locked",
        },
    )
    # Then it is refused, saying the listing was denied, and nothing is created
    assert response.status_code == 422
    assert "denied" in response.json()["detail"]
    assert cstor.api.get("/api/v1/migrations").json() == []


def test_permission_revoked_before_planning_fails_the_migration(
    cstor: RunningCstor, locked_store: str
) -> None:
    # Given a migration accepted while the keys could list, with the planner not yet at it
    LockedStore.allow_listing.set()
    connection = connect(cstor, locked_store)
    cstor.services.processes["planner"].terminate()
    cstor.services.processes["planner"].wait()
    migration_id = cstor.migrate(connection, "locked", connection, "locked")
    # When the permission is revoked and the planner lists the bucket
    LockedStore.allow_listing.clear()
    cstor.services.restart_exited()
    # Then the migration fails with the reason, instead of retrying forever
    state = cstor.wait_finished(migration_id)
    assert state["status"] == "failed"
    assert "access-denied" in state["error"]


@pytest.mark.parametrize(
    ("side", "source_bucket", "destination_bucket"),
    [("source", "locked", "open"), ("destination", "open", "locked")],
)
def test_a_refused_listing_fails_the_migration_naming_the_side_bucket_and_store(
    cstor: RunningCstor, locked_store: str, side: str, source_bucket: str, destination_bucket: str
) -> None:
    # Given a migration accepted while the keys could list both buckets, not yet planned
    LockedStore.allow_listing.set()
    connection = connect(cstor, locked_store)
    cstor.services.processes["planner"].terminate()
    cstor.services.processes["planner"].wait()
    migration_id = cstor.migrate(connection, source_bucket, connection, destination_bucket)
    # When the `locked` bucket's listing is refused as the planner lists both sides
    LockedStore.allow_listing.clear()
    cstor.services.restart_exited()
    # Then the migration's error names that side, the bucket, the store, the S3 code and
    # the store's own words
    state = cstor.wait_finished(migration_id)
    assert state["status"] == "failed"
    error = state["error"]
    assert f"the {side} {locked_store}" in error
    assert "bucket 'locked'" in error
    assert "AccessDenied" in error
    assert DENIED_WORDS in error
