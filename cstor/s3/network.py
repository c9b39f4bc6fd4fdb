"""How every HTTP stack of the adapter reaches a store: trust, timeouts and who retries.

One place for what boto3 (control plane), obstore (multipart source streams),
urllib3 (listings, part uploads, additional checksums) and `wire` (whole objects,
server-side copies) are told, so that they agree.

Retrying is one layer's job for each request, never two:
- inside a copy, the clients try once (`COPY`, `WIRE`). Control calls (HEAD, tags,
  create/complete an upload) and parts are tried again by the copier
  (`CopyContext.control`, `PartStream`), which then gives up for good
  (`errors.gave_up`: no longer transient), so that the transfer service does not
  copy the object again for them; whole-object GETs and PUTs, a broken source
  stream and a checksum mismatch are tried again by the transfer service, an
  object at a time, which knows about pause and records the attempts;
- outside a copy (connection checks, listings) nobody retries above the client, so
  there the client retries a little (`CHECK`, `LISTING`), error answers 5xx included.
Above them the bus redelivers a work item (a packet, a migration to plan) whose
handler failed transiently, after its own delay: a retry of the work across time and
processes, not of a request. tests/integration/test_transfer_retries.py counts the
requests a store that keeps refusing receives.
"""

from __future__ import annotations

from dataclasses import dataclass

from cstor.s3.tls import tls_context

__all__ = ["CHECK", "COPY", "LISTING", "WIRE", "Reach", "tls_context"]


@dataclass(frozen=True)
class Reach:
    """Timeouts (seconds) and attempts of one kind of request to a store."""

    connect_timeout: float
    read_timeout: float
    attempts: int
    """Tries of one request by the client itself, the first included."""


CHECK = Reach(connect_timeout=3.0, read_timeout=10.0, attempts=2)
"""Connection checks and bucket lists a user waits for: an answer within seconds."""
LISTING = Reach(connect_timeout=10.0, read_timeout=60.0, attempts=4)
"""The planner's listings and metadata reads outside a copy: the client retries."""
COPY = Reach(connect_timeout=10.0, read_timeout=300.0, attempts=1)
"""Every request of a copy: the copier and the transfer service retry, not the client."""
WIRE = Reach(connect_timeout=5.0, read_timeout=600.0, attempts=1)
"""Whole objects on the event loop: a 5 GiB body may take minutes to read."""
