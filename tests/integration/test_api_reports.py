"""The report of a migration: every object's final status, size, checksum and error,
downloaded as CSV or JSON, streamed, and linked from the migration's page."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from litestar.testing import AsyncTestClient

from services.api.migrations.reports import ROWS_PER_FETCH
from tests.readmodel_rows import record_migration, record_objects

Client = AsyncTestClient[Any]


async def test_the_report_lists_every_object_in_csv_and_json(
    client: Client, database_url: str, owner: str
) -> None:
    # Given a finished migration of more objects than one fetch of the stream holds
    count = ROWS_PER_FETCH * 2 + 7
    migration_id = await record_migration(database_url, owner, status="failed")
    await record_objects(database_url, migration_id, count)

    # When its page is opened, it links both reports
    page = (await client.get(f"/migrations/{migration_id}")).text
    csv_url = f"/api/v1/migrations/{migration_id}/report.csv"
    json_url = f"/api/v1/migrations/{migration_id}/report.json"
    assert f'href="{csv_url}"' in page
    assert f'href="{json_url}"' in page

    # Then the CSV has a header and one row per object, in key order, as a download
    response = await client.get(csv_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == count
    assert [r["key"] for r in rows] == sorted(r["key"] for r in rows)
    failed = next(r for r in rows if r["key"] == "photos/003.jpg")
    assert (failed["status"], failed["size"], failed["error"]) == (
        "failed",
        str(2048 * 3),
        "SlowDown: after 3 attempts",
    )
    copied = next(r for r in rows if r["key"] == "photos/001.jpg")
    assert copied["checksum"] == f"md5:{1:032x}"

    # And the JSON is an array of the same objects
    response = await client.get(json_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    objects = json.loads(response.text)
    assert len(objects) == count
    assert objects[3]["key"] == "photos/003.jpg"
    assert objects[3]["status"] == "failed"
    assert set(objects[0]) >= {"key", "status", "size", "checksum", "error", "updated_at"}


async def test_an_empty_migration_has_an_empty_report(
    client: Client, database_url: str, owner: str
) -> None:
    migration_id = await record_migration(database_url, owner, status="completed")

    response = await client.get(f"/api/v1/migrations/{migration_id}/report.json")
    assert json.loads(response.text) == []
    response = await client.get(f"/api/v1/migrations/{migration_id}/report.csv")
    assert response.text.splitlines() == [
        "key,status,size,checksum,error,reason,attempts,updated_at"
    ]
