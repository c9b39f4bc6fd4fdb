"""What one migration asks of each of its copies, besides the object: its storage class."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class CopyOptions:
    """A migration's wishes for every copy it makes (one copier serves many migrations)."""

    storage_class: str | None = None  # x-amz-storage-class of the copy; None: the default


DEFAULT_OPTIONS = CopyOptions()
