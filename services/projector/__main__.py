"""`python -m services.projector`. The projector on its own: folds events into the read models.

This package is the service's composition root: compose runs it so, and so does `cstor up`.
"""

from __future__ import annotations

from cstor.runtime import run_service
from services.projector.service import run

if __name__ == "__main__":
    run_service(run, "projector")
