"""Domain exceptions: each says in plain words what rule was broken.

Use cases raise these, never a web framework's errors; the api answers each kind with
its status (services.api.problems), REST as problem+json, the dashboard as a page.
"""

from __future__ import annotations

from collections.abc import Callable


class DomainError(Exception):
    """A rule of the domain was broken."""


class InvalidRequest(DomainError):
    """A request from a user cannot be carried out as given.

    ``field`` is the path of the field at fault (``filters.min_size``), when one is;
    ``mentions`` are other fields' paths the reason names, so that a form can name them
    all in its own words (``named``). ``str()`` is ``"field: reason"`` in the API's words,
    or the reason alone when it mentions its own field.
    """

    def __init__(self, reason: str, *, field: str | None = None, mentions: tuple[str, ...] = ()):
        self.reason = reason
        self.field = field
        self.mentions = mentions
        super().__init__(self.named(str))

    def named(self, name: Callable[[str], str]) -> str:
        """The message with every field it names (its own and those it mentions) as ``name``
        calls it: the API's paths as they are, a form's labels."""
        reason = self.reason
        for path in self.mentions:
            reason = reason.replace(path, name(path))
        if self.field is None or self.field in self.mentions:
            return reason  # it names its field itself ("source_bucket is required.")
        return f"{name(self.field)}: {reason}"


class NotFound(DomainError):
    """What was asked for does not exist, or is not the asker's to see."""


class Conflict(DomainError):
    """A command does not fit the current state of what it acts on."""


class MigrationStateError(Conflict):
    """A command does not fit the migration's current status."""


class Unavailable(DomainError):
    """A store the command needs (the secret store) failed; nothing was changed."""
