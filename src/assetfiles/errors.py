"""Typed errors raised by the service layer and rendered by each face in its own dialect.

Faces map these to HTTP statuses, GraphQL ``extensions.code`` values or EnOS envelopes; the
service never knows which face called it.
"""

from __future__ import annotations

import errno


class AssetfilesError(Exception):
    """Base of every error a caller may see; ``message`` is safe to show to that caller."""

    code = "INTERNAL"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadInput(AssetfilesError):
    """A request argument is malformed; ``field`` names it."""

    code = "BAD_USER_INPUT"
    http_status = 400


class Unauthenticated(AssetfilesError):
    """No credential, or one that matches nothing."""

    code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(AssetfilesError):
    """The caller is known but lacks the permission, or a signed URL is bad or expired."""

    code = "FORBIDDEN"
    http_status = 403


class NotFound(AssetfilesError):
    """Unknown, or belonging to another organization: the two must look the same."""

    code = "NOT_FOUND"
    http_status = 404


class PayloadTooLarge(AssetfilesError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class IntegrityMismatch(AssetfilesError):
    """Uploaded bytes differ from their declared length or digest; nothing was stored."""

    code = "BAD_USER_INPUT"
    http_status = 400


class TokenExpired(Unauthenticated):
    """An access token that was valid and is no longer (EnOS code 1203)."""

    code = "TOKEN_EXPIRED"


class TokenRefused(AssetfilesError):
    """The EnOS token service refused a request; ``enos_status`` is its documented code."""

    code = "TOKEN_REFUSED"

    def __init__(self, message: str, *, enos_status: int, http_status: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.enos_status = enos_status
        self.http_status = http_status


class BytesMissing(AssetfilesError):
    """The catalog has the content but the blob store lost its bytes (``assetfiles fsck`` finds these)."""

    code = "INTERNAL"
    http_status = 500


class Conflict(AssetfilesError):
    """The request clashes with what exists (a name taken, a secret in use)."""

    code = "CONFLICT"
    http_status = 409


class RateLimited(AssetfilesError):
    """Too many requests (or failed sign-ins) from one credential or address; retry later."""

    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeout(AssetfilesError):
    """The client sent its body too slowly, or stopped sending it."""

    code = "REQUEST_TIMEOUT"
    http_status = 408


class ClientGone(AssetfilesError):
    """The client closed the connection before its body was complete; nothing was stored."""

    code = "CLIENT_DISCONNECTED"
    http_status = 400


class InsufficientStorage(AssetfilesError):
    """The server's disk (blobs, spool or catalog) is full; the request stored nothing."""

    code = "INSUFFICIENT_STORAGE"
    http_status = 507


#: errno values of a full file system or an exhausted disk quota
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
#: how the catalog's engines say the same: SQLite's result code, PostgreSQL's SQLSTATE disk_full
_DATABASE_FULL = {"SQLITE_FULL", "53100"}


def classify(exc: BaseException) -> AssetfilesError | None:
    """The typed error a failure of the machine stands for, or None when it is a real bug.

    A full disk is the operator's to fix, not the client's fault and not a bug: every face
    answers it 507 in its own format instead of a 500 with a traceback.
    """
    if isinstance(exc, AssetfilesError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return InsufficientStorage("storage: the server's disk is full; nothing was stored")
    driver_error = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
    for code in (getattr(driver_error, "sqlite_errorname", None), getattr(driver_error, "sqlstate", None)):
        if code in _DATABASE_FULL:
            return InsufficientStorage("storage: the catalog's disk is full; nothing was stored")
    return None
