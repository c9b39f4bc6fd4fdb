"""Moved to `cstor.readmodel.projection`; kept until the tests that import it here move."""

from __future__ import annotations

from cstor.readmodel.projection import fold, move_position, project, unapplied

__all__ = ["fold", "move_position", "project", "unapplied"]
