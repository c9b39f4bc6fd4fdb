"""CSTOR_LOG_FORMAT=json: every line every service writes is one JSON object, and the
lines about a migration name it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

pytestmark = pytest.mark.stack(log_format="json", packet_max_objects=2)


def log_lines(cstor: RunningCstor) -> dict[str, list[dict[str, Any]]]:
    """Each service's output, line by line, as the objects it wrote; a line that is not
    one fails the test, naming the service and the line."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((cstor.settings.data_dir / "logs").glob("*.log")):
        found[path.stem] = []
        for text in path.read_text().splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                pytest.fail(f"{path.name}: not a JSON line: {text!r}")
            assert isinstance(line, dict), (path.name, text)
            found[path.stem].append(line)
    return found


def test_every_service_writes_json_lines_that_name_the_migration(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a source bucket of a few objects, one of them named in more than ASCII
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    source = s3_client_for(s3_source)
    for key in ("a", "b/été.txt", "c d", "日本/語"):
        source.put_object(Bucket=source_bucket, Key=key, Body=key.encode())

    # When a migration of it runs with JSON logs
    migration_id = cstor.migrate(
        cstor.connect(s3_source, "source"), source_bucket,
        cstor.connect(s3_destination, "destination"), dest_bucket,
    )  # fmt: skip
    assert cstor.wait_finished(migration_id)["status"] == "completed"
    cstor.services.stop()  # and the services stop, logging as they go

    # Then every line of every service is an object with time, level, service and message
    lines = log_lines(cstor)
    assert set(lines) == {"api", "planner", "projector", "transfer"}
    for label, written in lines.items():
        for line in written:
            assert {"time", "level", "service", "message"} <= set(line), (label, line)
            assert line["service"] == label, line
    # And the lines about the migration name it: its completion, its packets' copies
    about = [line for written in lines.values() for line in written
             if line.get("migration_id") == migration_id]  # fmt: skip
    assert {"planner", "transfer"} <= {line["service"] for line in about}, about
    completed = [line for line in lines["planner"] if "completed" in line["message"]]
    assert completed
    assert all(line["migration_id"] == migration_id for line in completed)
    packets = [line for line in lines["transfer"] if "transferred packet" in line["message"]]
    assert packets
    assert all(line.get("packet_id") for line in packets), packets
