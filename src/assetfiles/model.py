"""Plain domain types shared by every layer; no I/O here."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeAlias, TypeVar
from urllib.parse import quote

from assetfiles.errors import BadInput

#: Product, device and channel identifiers: the channel id joins them with dots, so none may
#: contain one.
IDENTIFIER = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
#: Organization, asset, signal and token names are freer, but still printable and bounded.
OBJECT_ID = re.compile(r"^[A-Za-z0-9_\-.:@]{1,128}$")
MAX_NAME_LENGTH = 255
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: An EnOS file URI, ``enos-connect://<id>.<ext>`` (bytes sent in the integration request) or
#: ``enos-lark://<id>.<ext>`` (bytes PUT to an upload URL the request asked for): checked by the
#: server and by the client alike, and produced only by :func:`mint_enos_uri`.
ENOS_FILE_URI = re.compile(r"^enos-(connect|lark)://[A-Za-z0-9_\-]{1,128}(\.[A-Za-z0-9_\-]{1,16})?$")
ENOS_SCHEMES = ("enos-connect", "enos-lark")
_URI_EXTENSION = re.compile(r"^[A-Za-z0-9_\-]{1,16}$")


def mint_enos_uri(name: str, extension: str | None = None, *, scheme: str = "enos-connect") -> str:
    """A new, unguessable EnOS file URI for a file called ``name``.

    The extension is the one given (EnOS messages send ``fileExt``, with or without its dot) or
    the name's, lowercased; one that the URI pattern would refuse (``csv~``, ``tar.gz`` parts,
    non-ASCII) becomes ``bin``, so every minted URI passes :data:`ENOS_FILE_URI`.
    """
    if scheme not in ENOS_SCHEMES:
        raise ValueError(f"scheme: {scheme!r} is not an EnOS file scheme")
    suffix = extension if extension else name.rpartition(".")[2] if "." in name else ""
    suffix = suffix.lstrip(".").lower()
    if not _URI_EXTENSION.fullmatch(suffix):
        suffix = "bin"
    return f"{scheme}://{secrets.token_hex(8)}.{suffix}"


def now_ms() -> int:
    """Timestamps are integer epoch milliseconds in the catalog: portable and cheap to sort."""
    return int(datetime.now(UTC).timestamp() * 1000)


def ms_to_iso(value: int) -> str:
    return datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_to_ms(value: str, *, field: str) -> int:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{field}: '{value}' is not an ISO 8601 date-time", field=field) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients and the exact name in ``filename*``."""
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        fallback = name  # the common case, without a pass over every character
    else:
        fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def check_identifier(value: str, *, field: str, pattern: re.Pattern[str] = IDENTIFIER) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadInput(
            f"{field}: {value!r} is not a valid identifier (letters, digits, '_' and '-', 1-128 chars)",
            field=field,
        )
    return value


def check_content_name(value: str, *, field: str = "name") -> str:
    """Names are stored as given (clients make them safe for their disks) but must be printable."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{field}: must be a non-empty string", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise BadInput(f"{field}: longer than {MAX_NAME_LENGTH} characters", field=field)
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise BadInput(f"{field}: must not contain control characters", field=field)
    if any(0xD800 <= ord(char) <= 0xDFFF for char in value):
        raise BadInput(f"{field}: must not contain lone surrogates (not valid Unicode text)", field=field)
    return value


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class CreatorKind(StrEnum):
    USER = "user"
    TOKEN = "token"  # noqa: S105 - a creator kind, not a secret
    DEVICE = "device"


@dataclass(frozen=True)
class DeviceRef:
    """A device is a product id plus a device id; written ``<product>.<device>``."""

    product_id: str
    device_id: str

    @classmethod
    def parse(cls, value: str, *, field: str) -> DeviceRef:
        product_id, dot, device_id = value.partition(".")
        if not dot:
            raise BadInput(f"{field}: {value!r} is not '<product_id>.<device_id>'", field=field)
        return cls(check_identifier(product_id, field=field), check_identifier(device_id, field=field))

    def __str__(self) -> str:
        return f"{self.product_id}.{self.device_id}"


@dataclass(frozen=True)
class DeviceCredential:
    """A device's stored credential in one organization: the salted scrypt of its secret (the slow
    check, always there when the device has a secret) and, once the secret was checked, its keyed
    digest (the fast check: an HMAC under the server key, bound to the organization and device)."""

    org_id: str
    secret_hash: str | None
    secret_digest: str | None = None
    #: the secret sealed under the server key, for logins signed with it (EnOS); None: not kept
    sealed_secret: str | None = None
    #: Murano activation: None (not enabled), "enabled" or "activated"
    activation: str | None = None


@dataclass(frozen=True)
class DeviceSession:
    """A session a device obtained by logging in; its id is known only to the device."""

    org_id: str
    device: DeviceRef
    protocol: str
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class ChannelId:
    """``<product_id>.<device_id>.data_in.<channel>``: how a signal names the device feeding it."""

    device: DeviceRef
    channel: str

    @classmethod
    def parse(cls, value: str, *, field: str) -> ChannelId:
        parts = value.split(".") if isinstance(value, str) else []
        if len(parts) != 4 or parts[2] != "data_in":
            raise BadInput(
                f"{field}: {value!r} is not a channel id '<product_id>.<device_id>.data_in.<channel>'",
                field=field,
            )
        for part in (parts[0], parts[1], parts[3]):
            check_identifier(part, field=field)
        return cls(DeviceRef(parts[0], parts[1]), parts[3])

    def __str__(self) -> str:
        return f"{self.device}.data_in.{self.channel}"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API token of one organization with its permissions."""

    org_id: str
    name: str
    permissions: frozenset[Permission]
    kind: CreatorKind = CreatorKind.TOKEN
    device: DeviceRef | None = None

    def can(self, permission: Permission) -> bool:
        return Permission.ADMIN in self.permissions or permission in self.permissions


@dataclass(frozen=True)
class Creator:
    kind: CreatorKind
    name: str | None = None
    device: DeviceRef | None = None


@dataclass(frozen=True)
class Association:
    type: str
    id: str


@dataclass(frozen=True)
class Signal:
    id: str
    name: str | None
    channel: ChannelId
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Asset:
    org_id: str
    id: str
    name: str
    description: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    signals: tuple[Signal, ...] = ()

    @property
    def devices(self) -> frozenset[DeviceRef]:
        return frozenset(signal.channel.device for signal in self.signals)


def media_type_matches(content_type: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether a media type (parameters ignored) is one of ``patterns``: exact, or ``type/*``."""
    base = content_type.split(";", 1)[0].strip().lower()
    family = base.split("/", 1)[0] + "/*"
    return any(pattern.lower() in (base, family) for pattern in patterns)


@dataclass(frozen=True)
class Quota:
    """What one organization may store; None in a field means no limit there."""

    max_total_bytes: int | None = None
    max_file_bytes: int | None = None
    #: media types ("application/pdf") or families ("image/*"); None means any
    content_types: tuple[str, ...] | None = None

    def allows_type(self, content_type: str) -> bool:
        return self.content_types is None or media_type_matches(content_type, self.content_types)


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: never its secret."""

    org_id: str
    name: str
    permissions: frozenset[Permission]
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None

    def usable(self, now: int) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def principal(self) -> Principal:
        return Principal(org_id=self.org_id, name=self.name, permissions=self.permissions)


@dataclass(frozen=True)
class EnosFacet:
    """What the EnOS face knows of a file: its ``enos-connect://`` URI and category."""

    file_uri: str
    category: str
    feature_type: str | None = None
    feature_id: str | None = None


@dataclass(frozen=True)
class Content:
    id: str
    org_id: str
    name: str
    content_type: str
    type: str
    length: int
    sha256: str
    md5: str
    creator: Creator
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    associations: tuple[Association, ...] = ()
    enos: EnosFacet | None = None
    #: how the bytes arrived (one of UPLOAD_PATHS); None for contents stored before it was recorded
    via: str | None = None


#: The ways bytes reach assetfiles, as ``Content.via`` names them (the console shows them).
UPLOAD_PATHS = {
    "tus": "a resumable upload at /files/ (tus 1.0: the console, assetfiles upload, tus clients)",
    "graphql": "createContentUpload and its upload URL (scripts, the console, assetfiles upload)",
    "device-api": "PUT /api/devices/... with Authorization: Device",
    "enos-device": "the EnOS device HTTP API (EnOS's device SDK)",
    "enos-integration": "the EnOS integration API (an application)",
    "fixture": "assetfiles apply",
}


@dataclass(frozen=True)
class BlobStream:
    """A blob's bytes as a store streams them, one ``Range`` applied."""

    status: int  # 200, 206 or 416
    length: int | None
    content_range: str | None
    body: AsyncIterator[bytes]


@dataclass(frozen=True)
class LocalFile:
    """The bytes are a file on this machine: served from ``path`` with Range and conditional
    requests, or by nginx from ``relative`` (its path under the blob root, see docs/nginx.md).
    ``read_small`` gives a small file's bytes whole, from memory when the store keeps them.
    ``path`` is text, not a :class:`~pathlib.Path`: every download makes one, most never open it,
    and a Path costs more to make than the rest of choosing the delivery."""

    path: str
    relative: str
    read_small: Callable[[int], bytes | None]


@dataclass(frozen=True)
class Redirect:
    """The blob store serves the bytes itself: send the caller to ``url`` (valid until then)."""

    url: str


@dataclass(frozen=True)
class Streamed:
    """The bytes must pass through us (an API that answers with them, from a store that is not a
    local file): ``open`` fetches them, one ``Range`` header applied."""

    open: Callable[[str | None], Awaitable[BlobStream]]


#: How a blob store delivers a content's bytes: the one answer of :meth:`BlobStore.deliver`, which
#: the server's delivery module turns into a response for every face.
Delivery: TypeAlias = LocalFile | Redirect | Streamed


@dataclass(frozen=True)
class StoredFile:
    """What serving a content's bytes needs, and nothing more (one indexed row)."""

    id: str
    org_id: str
    name: str
    content_type: str
    length: int
    sha256: str
    updated_at: int


class OrderBy(StrEnum):
    UPDATED_AT = "updated_at"
    CREATED_AT = "created_at"
    NAME = "name"
    LENGTH = "length"


@dataclass(frozen=True)
class ContentQuery:
    """A listing request after validation: what the store turns into one indexed query."""

    org_id: str
    association: Association | None = None
    devices: tuple[DeviceRef, ...] | None = None
    ids: tuple[str, ...] | None = None
    content_types: tuple[str, ...] = ()
    tags: tuple[tuple[str, str | None], ...] = ()
    name_glob: str | None = None
    modified_since: int | None = None
    order_by: OrderBy = OrderBy.UPDATED_AT
    descending: bool = True
    limit: int = 50
    offset: int = 0
    #: Keyset pagination: the (sort value, pk) of the row the page starts after.
    after: tuple[int | str, int] | None = None


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    #: (sort value, pk) of the last row when the page is full: where the next page starts.
    last_key: tuple[int | str, int] | None = None
    next_cursor: str | None = None
