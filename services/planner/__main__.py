"""`python -m services.planner`. The planner on its own: plans and completes migrations.

This package is the service's composition root: compose runs it so, and so does `cstor up`.
"""

from __future__ import annotations

from cstor.runtime import run_service
from services.planner.service import run

if __name__ == "__main__":
    run_service(run, "planner")
