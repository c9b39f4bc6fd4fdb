"""What request handlers are given: the owner of the request and the app's adapters."""

from __future__ import annotations

from dataclasses import dataclass

from cstor.connections import ConnectionStore
from cstor.eventstore import Migrations
from services.api.queries import ReadModels

# Until accounts exist every request acts for the one local operator.
LOCAL_OWNER = "local"


@dataclass(frozen=True)
class Services:
    """The api's adapters, created once by the lifespan and kept on ``app.state``."""

    migrations: Migrations
    connections: ConnectionStore
    read_models: ReadModels


async def provide_owner() -> str:
    return LOCAL_OWNER
