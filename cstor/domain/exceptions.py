"""Domain exceptions: each says in plain words what rule was broken."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain was broken."""


class MigrationStateError(DomainError):
    """A command does not fit the migration's current status."""


class InvalidRequest(DomainError):
    """A request from a user cannot be carried out as given."""
