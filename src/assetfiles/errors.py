"""Typed errors raised by the service layer and rendered by each face in its own dialect.

An error carries a domain ``code``, a message safe to show its caller and the domain name of the
``field`` at fault; nothing here knows HTTP or any platform's codes. Each face maps them in one
place: the HTTP status table in server/faces.py, EnOS codes and envelopes in server/enos.py,
argument paths (``filters.orderBy``) in the GraphQL endpoint. The service never knows which face
called it.
"""

from __future__ import annotations

import errno
from enum import StrEnum


class AssetfilesError(Exception):
    """Base of every error a caller may see; ``message`` is safe to show to that caller."""

    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadInput(AssetfilesError):
    """A request argument is malformed; ``field`` names it."""

    code = "BAD_USER_INPUT"


class Unauthenticated(AssetfilesError):
    """No credential, or one that matches nothing."""

    code = "UNAUTHENTICATED"


class Forbidden(AssetfilesError):
    """The caller is known but lacks the permission, or a signed URL is bad or expired."""

    code = "FORBIDDEN"


class NotFound(AssetfilesError):
    """Unknown, or belonging to another organization: the two must look the same."""

    code = "NOT_FOUND"


class PayloadTooLarge(AssetfilesError):
    code = "PAYLOAD_TOO_LARGE"


class IntegrityMismatch(AssetfilesError):
    """Uploaded bytes differ from their declared length or digest; nothing was stored."""

    code = "BAD_USER_INPUT"


class TokenExpired(Unauthenticated):
    """An access token that was valid and is no longer."""

    code = "TOKEN_EXPIRED"


class TokenRefusal(StrEnum):
    """Why an application's token request was refused."""

    #: the same signed request again, after the token it obtained is gone
    REPLAYED = "replayed"
    UNKNOWN_APPLICATION = "unknown_application"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    EMPTY = "empty"
    #: a refresh naming a token the application does not hold
    NOT_REFRESHABLE = "not_refreshable"


class TokenRefused(AssetfilesError):
    """The token service refused an application's request; ``reason`` says why."""

    code = "TOKEN_REFUSED"

    def __init__(self, message: str, *, reason: TokenRefusal, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.reason = reason

    @property
    def refuses_credential(self) -> bool:
        """True when the request was well formed and its credential was not accepted."""
        return self.reason not in (TokenRefusal.MALFORMED, TokenRefusal.EMPTY)


class BytesMissing(AssetfilesError):
    """The catalog has the content but the blob store lost its bytes (``assetfiles fsck`` finds these)."""

    code = "INTERNAL"


class Conflict(AssetfilesError):
    """The request clashes with what exists (a name taken, a secret in use)."""

    code = "CONFLICT"


class UnsupportedMediaType(BadInput):
    """The body is not in the media type the endpoint takes."""

    code = "UNSUPPORTED_MEDIA_TYPE"


class Locked(Conflict):
    """Another request is changing the same thing right now (a resumable upload's PATCH)."""

    code = "LOCKED"


class Gone(NotFound):
    """It existed, and its time is up (an expired resumable upload)."""

    code = "GONE"


class ChecksumMismatch(IntegrityMismatch):
    """A chunk's bytes do not hash to the checksum sent with them; the chunk was discarded."""

    code = "CHECKSUM_MISMATCH"


class UploadRaced(Conflict):
    """The bytes were deleted by a concurrent delete of identical content; retrying succeeds."""


class QuotaExceeded(AssetfilesError):
    """An upload the organization's quota does not allow; the subclass says which limit."""

    code = "QUOTA_EXCEEDED"


class FileTooLarge(QuotaExceeded):
    """Larger than the organization accepts one file to be."""


class QuotaFull(QuotaExceeded):
    """The organization would store more bytes in all than its quota allows."""


class TypeNotAccepted(QuotaExceeded):
    """A media type the organization's quota does not accept."""


class RateLimited(AssetfilesError):
    """Too many requests (or failed sign-ins) from one credential or address; retry later."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeout(AssetfilesError):
    """The client sent its body too slowly, or stopped sending it."""

    code = "REQUEST_TIMEOUT"


class ClientGone(AssetfilesError):
    """The client closed the connection before its body was complete; nothing was stored."""

    code = "CLIENT_DISCONNECTED"


class InsufficientStorage(AssetfilesError):
    """The server's disk (blobs, spool or catalog) is full; the request stored nothing."""

    code = "INSUFFICIENT_STORAGE"


def refuses_credential(error: AssetfilesError) -> bool:
    """Whether the error refuses the credential a caller presented: a failed sign-in, which the
    per-address limit counts."""
    if isinstance(error, TokenRefused):
        return error.refuses_credential
    return isinstance(error, Unauthenticated)


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
