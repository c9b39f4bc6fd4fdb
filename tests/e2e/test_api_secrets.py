"""A connection's secret key, once given, is found nowhere: not in any database table
(the event store included), the NATS stream, the services' logs, the API's answers or
the dashboard's HTML."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from launcher.embedded import EmbeddedS3
from tests.leak_scan import LOG_FORMATS, every_log_as_text, every_row_as_text, every_stream_message
from tests.sessions import PASSWORD, csrf_field, new_email
from tests.stack import RunningCstor, s3_client_for


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_a_secret_key_is_nowhere_but_encrypted_in_its_table(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    api = cstor.api
    # Given a user signed in to the dashboard, who makes an API token on the account page
    del api.headers["Authorization"]
    form = api.get("/sign-up")
    api.post(
        "/sign-up",
        data={"email": new_email(), "password": PASSWORD, "_csrf_token": csrf_field(form.text)},
    )
    account = api.get("/account")
    created = api.post(
        "/account/tokens",
        data={"name": "grep", "_csrf_token": csrf_field(account.text)},
        follow_redirects=True,  # to the account page, which shows the new token once
    )
    token = re.search(r'<code class="token">([^<]+)</code>', created.text)
    assert token is not None
    api.headers["Authorization"] = f"Bearer {token[1]}"

    # And a finished migration between two connections with known secrets
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for n in range(5):
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=f"k{n}", Body=b"x" * n)
    source_id = cstor.connect(s3_source, "source")
    dest_id = cstor.connect(s3_destination, "destination")
    migration_id = cstor.migrate(source_id, source_bucket, dest_id, dest_bucket)
    assert cstor.wait_finished(migration_id)["status"] == "completed"
    # And a key rotation that was refused (the wrong secret must not be echoed either)
    wrong = "rotated-but-wrong-secret"
    refused = api.put(f"/api/v1/connections/{source_id}/secret", json={"secret_key": wrong})
    assert refused.status_code == 422
    secrets = [s3_source.secret_key, s3_destination.secret_key, wrong]

    # When everything a person or a process could read is gathered
    database = every_row_as_text(database_url)
    stream = asyncio.run(every_stream_message(cstor.settings.nats_url, cstor.settings.stream_name))
    logs = every_log_as_text(cstor.settings.data_dir, cstor.settings.log_format).encode()
    api_paths = [
        "/api/v1/connections",
        f"/api/v1/connections/{source_id}",
        f"/api/v1/connections/{source_id}/buckets",
        "/api/v1/migrations",
        f"/api/v1/migrations/{migration_id}",
        f"/api/v1/migrations/{migration_id}/objects",
        f"/api/v1/migrations/{migration_id}/report.csv",
        f"/api/v1/migrations/{migration_id}/report.json",
        "/schema/openapi.json",
    ]
    answers = refused.content
    for path in api_paths:
        response = api.get(path)
        assert response.status_code == 200, (path, response.text)
        answers += response.content
    del api.headers["Authorization"]  # the pages, as the browser sees them
    pages = [
        "/",
        "/connections",
        f"/connections/{source_id}",
        f"/connections/{dest_id}",
        "/migrations/new",
        f"/migrations/{migration_id}",
        f"/migrations/{migration_id}/objects",
        f"/migrations/{migration_id}/progress",
        "/account",
        "/buckets",
        f"/buckets/{source_id}",
        f"/buckets/{source_id}/{source_bucket}/scan",
    ]
    html = b""
    for path in pages:
        response = api.get(path)
        assert response.status_code == 200, path
        html += response.content
    assert b"k4" in html  # the pages were really the migration's

    # Then no secret is in any of it
    for secret in secrets:
        for where, text in (
            ("the database", database.encode()),
            ("the NATS stream", stream),
            ("the logs", logs),
            ("the API", answers),
            ("the HTML", html),
        ):
            assert secret.encode() not in text, f"a secret key leaked into {where}"
