"""`python -m services.transfer`. A transfer replica on its own: copies and verifies objects.

This package is the service's composition root: compose runs it so, and so does `cstor up`.
"""

from __future__ import annotations

from cstor.runtime import run_service
from services.transfer.service import run

if __name__ == "__main__":
    run_service(run, "transfer")
