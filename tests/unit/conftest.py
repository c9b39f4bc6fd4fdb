"""The use cases (cstor.app) on the eventsourcing library's in-memory persistence.

`app` is a `Migrations` on the POPO recorder: the same application the services run on
Postgres, with no server. `given` brings a migration to the state a test starts from,
through the use cases themselves (tests/given.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cstor.app.migrations import Migrations
from tests.given import Given

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture
def app() -> Iterator[Migrations]:
    """The application on the library's in-memory recorder, empty."""
    migrations = Migrations(POPO)
    yield migrations
    migrations.close()


@pytest.fixture
def given(app: Migrations) -> Given:
    return Given(app)
