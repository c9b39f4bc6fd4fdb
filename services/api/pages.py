"""The HTMX dashboard (placeholder list until the pages land)."""

from __future__ import annotations

from typing import Any

PAGES: list[Any] = []
