"""`python -m services.api`. The api on its own: REST, the dashboard and the outbox relay.

This package is the service's composition root: compose runs it so, and so does `cstor up`.
"""

from __future__ import annotations

from cstor.runtime import run_service
from services.api.service import run

if __name__ == "__main__":
    run_service(run, "api")
