"""What can go wrong in a sync, as types: the engine decides by class, never by message text.

Every request the client makes, to the API or for bytes, ends in one of four outcomes besides
success, and each has one consequence:

- :class:`Fatal`: nothing more can be done (the token or application is refused, the server
  cannot be reached, the folder is busy). The run stops; the CLI exits 2.
- :class:`Gone`: the content, or the asset, no longer exists on the server. Not a failure:
  the report counts it as gone.
- :class:`Refused`: this one request was refused (an expired or rejected signed URL, an expired
  EnOS access token). A fresh URL or token may succeed.
- :class:`Retryable`: a transient condition (429, 5xx, a reset, a truncated body). The same
  request may succeed after ``wait`` seconds (None: the retry policy's backoff).

:class:`Failed` is the base of the last three and stands on its own for a file that cannot be
fetched for good (a length or sha256 mismatch, an unexpected status): the file is listed as
failed and the run goes on.
"""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class SyncError(Exception):
    """Base of every outcome the client classifies."""


class Fatal(SyncError):
    """The run cannot go on at all."""


class Failed(SyncError):
    """One file or asset could not be done; the run goes on."""


class Gone(Failed):
    """The content or asset was deleted on the server."""


class Refused(Failed):
    """The server refused this request (URL expired or rejected); a fresh URL may be accepted."""


class Retryable(Failed):
    """A transient failure; worth the same request again after ``wait`` seconds (None: backoff)."""

    def __init__(self, message: str, *, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def first_of(exc: BaseException, kind: type[E]) -> E | None:
    """The first ``kind`` in ``exc`` or, through (nested) exception groups, inside it: task groups
    wrap what their tasks raise, and a caller decides by the outcome's class."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := first_of(inner, kind)) is not None:
                return found
    return None


__all__ = ["Failed", "Fatal", "Gone", "Refused", "Retryable", "SyncError", "first_of"]
