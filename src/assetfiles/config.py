"""Settings, read from arguments, ``ASSETFILES_*`` environment variables, a TOML file and defaults.

Precedence, highest first: command-line options, the environment, the configuration file
(``--config`` or ``ASSETFILES_CONFIG``), the defaults. One object carries every knob so that the
server processes (started by granian in fresh interpreters) and the CLI agree: the CLI exports
the effective settings as environment variables and the server factory reads them back.
"""

from __future__ import annotations

import contextvars
import json
import os
import secrets
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_DATA_DIR = Path("assetfiles-data")
CONFIG_ENV = "ASSETFILES_CONFIG"
#: Settings whose values are secrets: masked wherever settings are shown.
SECRET_FIELDS = frozenset({"secret_key"})
_FILE_VALUES: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "file_values", default=None
)


def make_private_dir(path: Path) -> None:
    """Create a data directory owner-only (0700); an existing one is left as its owner set it."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)


class ConfigError(ValueError):
    """A configuration file or value is wrong; the message names the file, key or field."""


class Settings(BaseSettings):
    """Everything the server and the admin commands need to find their data and sign URLs."""

    model_config = SettingsConfigDict(env_prefix="ASSETFILES_", extra="ignore")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="Holds the SQLite catalog and blobs.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the catalog; default: SQLite in data_dir."
    )
    blob_dir: Path | None = Field(default=None, description="Blob directory; default: data_dir/blobs.")
    blob_url: str | None = Field(
        default=None,
        description="s3://bucket[/prefix]: blobs in S3-compatible object storage instead of blob_dir.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (default: AWS_ENDPOINT_URL, else AWS itself)."
    )
    s3_region: str | None = Field(default=None, description="S3 region (default: AWS_DEFAULT_REGION).")
    secret_key: str | None = Field(
        default=None,
        description="Key for signing transfer URLs; default: generated once into data_dir/secret.key.",
    )
    url_ttl_seconds: int = Field(default=600, ge=1, le=7 * 24 * 3600)
    small_blob_cache_bytes: int = Field(
        default=64 * 1024**2,
        ge=0,
        description="Bytes of small local blobs (64 KiB or less) each worker keeps in memory for "
        "downloads; 0: none.",
    )
    max_upload_bytes: int = Field(default=10 * 1024**3, ge=1)
    max_pending_uploads_per_org: int = Field(
        default=10_000,
        ge=1,
        description="Upload URLs an organization may hold unused at once (createContentUpload, EnOS "
        "upload-URL mode); past it, 429 with Retry-After until one is used or expires.",
    )
    resumable_lifetime_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        le=30 * 24 * 3600,
        description="How long a resumable (tus) upload may take from its creation; then it expires "
        "(410) and gc reclaims its bytes.",
    )
    resumable_max_pending_per_org: int = Field(
        default=1000,
        ge=1,
        description="Unfinished resumable uploads an organization may hold at once; past it, 429.",
    )
    resumable_max_pending_per_device: int = Field(
        default=8,
        ge=1,
        description="Unfinished resumable uploads one device may hold at once; past it, 429.",
    )
    resumable_max_chunk_bytes: int | None = Field(
        default=None,
        ge=1,
        description="The most bytes one PATCH (or creation-with-upload) may carry; unset: up to "
        "the rest of the upload.",
    )
    events_max_streams: int = Field(
        default=256, ge=1, description="GET /api/events streams one server process holds at once."
    )
    events_max_streams_per_org: int = Field(
        default=16, ge=1, description="GET /api/events streams one organization holds at once, per process."
    )
    events_stream_seconds: float = Field(
        default=3600, gt=0, description="A GET /api/events stream ends after this; clients reconnect."
    )
    events_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often an idle GET /api/events stream reads the change log."
    )
    events_retention_days: int = Field(
        default=7, ge=1, description="Content changes are kept this long for GET /api/events to resume from."
    )
    public_url: str | None = Field(
        default=None, description="Base URL put in signed URLs; default: taken from the request."
    )
    enos_token_ttl_seconds: int = Field(default=7200, ge=1, description="Lifetime of EnOS access tokens.")
    enos_timestamp_window_seconds: int = Field(
        default=300, ge=1, description="How far a token request's timestamp may be from the server clock."
    )
    enos_refresh_grace_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description="How long an EnOS access token stays valid after a refresh replaced it.",
    )
    enos_max_message_bytes: int = Field(default=512 * 1024, ge=1, description="Largest enos-message part.")
    enos_max_file_bytes: int = Field(default=100 * 1024**2, ge=1, description="Largest enos-file part.")
    accel_redirect_prefix: str | None = Field(
        default=None,
        description="When set (e.g. /_blobs/), downloads are authenticated here and then handed to nginx "
        "with X-Accel-Redirect: <prefix><aa>/<bb>/<sha256>; see docs/nginx.md.",
    )
    allowed_hosts: list[str] | None = Field(
        default=None,
        description="Host names (or host:port) the server answers for, when public_url is not set; "
        "signed URLs are built from the request's Host only if it is one of these. Default: any "
        "well-formed host.",
    )
    trusted_proxies: list[str] = Field(
        default=[],
        description='Addresses or networks of reverse proxies and load balancers (e.g. ["10.0.0.0/8"]): '
        "only from these are Forwarded, X-Forwarded-For and X-Forwarded-Proto believed, so that the "
        "client's address drives the per-address bounds and the logs. Default: none.",
    )
    blob_group_read: bool = Field(
        default=False,
        description="Blob files group-readable (0640, directories 0750) instead of owner-only, for an "
        "nginx that serves them (X-Accel-Redirect) as another user of the group.",
    )
    rate_limit_auth_failures: str | None = Field(
        default="30/minute",
        description="Failed sign-ins allowed per client address (e.g. 30/minute); past it the address "
        "gets 429 with Retry-After on every face. Empty: no limit. Counted where rate_limit_storage says.",
    )
    rate_limit_per_credential: str | None = Field(
        default="3000/minute",
        description="Requests allowed per API token, EnOS application or device (e.g. 3000/minute); "
        "429 with Retry-After past it. Empty: no limit. Counted where rate_limit_storage says.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where the rate limits are counted: memory:// (each process on its own, so N processes "
        "allow N times a limit) or a Redis every process and node shares (redis://host:6379/0, rediss://, "
        "redis+unix://; needs the redis extra). If Redis fails, each process counts on its own until it "
        "is back.",
    )
    max_requests_per_address: int = Field(
        default=256,
        ge=0,
        description="Requests in flight at once from one client address (0: no cap). Behind a proxy, "
        "raise it or set 0 and limit per client in the proxy.",
    )
    max_connections_per_worker: int = Field(
        default=4096,
        ge=16,
        le=65536,
        description="Requests one worker process serves at once (granian's backpressure); past it, new "
        "connections wait in the listen backlog. Well above max_requests_per_address times the "
        "addresses a slow-body flood may come from, so one such flood cannot keep /healthz waiting.",
    )
    catalog_threads_per_org: int = Field(
        default=8,
        ge=1,
        le=40,
        description="Catalog calls one organization's requests run at once, per process (of the 40 "
        "worker threads), so that one organization's heavy queries leave threads for the others.",
    )
    body_idle_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A request body that sends nothing for this long is refused (408).",
    )
    body_min_bytes_per_second: int = Field(
        default=1024,
        ge=0,
        description="After body_idle_timeout_seconds, a body arriving slower than this on average is "
        "refused (408). 0: no minimum.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain) to serve HTTPS with, together with tls_key; signed URLs "
        "are then https. Default: plain HTTP (TLS at a proxy, see docs/nginx.md).",
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert.")
    workers: int = Field(default=1, ge=1, le=64, description="Server worker processes.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    log_format: Literal["auto", "text", "json"] = Field(
        default="auto", description="Log lines as text or JSON; auto: text on a terminal, JSON otherwise."
    )
    access_log: bool = Field(default=True, description="One log line per request (no query strings).")
    metrics: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    console: bool = Field(default=True, description="Serve the web console at /console.")
    retention_interval_seconds: int = Field(
        default=3600,
        ge=0,
        description="How often serve applies retention policies (one process at a time); 0: never.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the configuration file being loaded."""
        return init_settings, env_settings, InitSettingsSource(settings_cls, _FILE_VALUES.get() or {})

    @field_validator("rate_limit_auth_failures", "rate_limit_per_credential")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if not value:
            return None
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate such as 30/minute or 10/second") from None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _rate_storage(cls, value: str) -> str:
        from assetfiles.server.rate_windows import check_storage_url

        return check_storage_url(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _lower_hosts(cls, value: list[str] | None) -> list[str] | None:
        return [host.lower() for host in value] if value is not None else None

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        from assetfiles.server.proxies import parse_networks

        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: give both (a certificate and its key) or neither")
        return self

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("blob_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value and (not value.startswith("s3://") or len(value) <= len("s3://")):
            raise ValueError("must be s3://bucket or s3://bucket/prefix")
        return value or None

    @field_validator("accel_redirect_prefix")
    @classmethod
    def _internal_location(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith("/") or not value.endswith("/") or any(c in value for c in "?#\r\n "):
            raise ValueError("must be an nginx location path that starts and ends with '/', e.g. /_blobs/")
        return value

    @property
    def catalog_url(self) -> str:
        """The SQLAlchemy URL of the catalog."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'catalog.sqlite3').resolve()}"

    @property
    def blob_path(self) -> Path:
        return self.blob_dir or self.data_dir / "blobs"

    @cached_property
    def signing_key(self) -> bytes:
        """The URL signing key; generated on first use so that restarts keep URLs valid."""
        if self.secret_key:
            return self.secret_key.encode()
        key_file = self.data_dir / "secret.key"
        if not key_file.exists():
            make_private_dir(self.data_dir)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
        return key_file.read_text().strip().encode()

    def to_environment(self) -> dict[str, str]:
        """The environment that makes a child process build the same settings (every set field)."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, Path):
                value = value.resolve()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, list):
                value = json.dumps(value)
            env[f"ASSETFILES_{name.upper()}"] = str(value)
        return env


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML file of settings (the same names as the fields); unknown keys are refused by name."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise ConfigError(f"config: unknown setting(s) {names} in {path}")
    return values


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """The effective settings: ``overrides`` (None means not given), environment, file, defaults."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    file_values = read_config_file(config_file) if config_file is not None else {}
    token = _FILE_VALUES.set(file_values)
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        where = f" (from {config_file} and the environment)" if config_file else ""
        raise ConfigError(f"invalid settings{where}: {problems}") from None
    finally:
        _FILE_VALUES.reset(token)


def shown_settings(settings: Settings) -> dict[str, Any]:
    """The effective settings for people to read: secrets masked, passwords out of URLs."""
    from sqlalchemy.engine import make_url

    shown: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name in SECRET_FIELDS and value:
            value = "********"
        elif name == "database_url" and value:
            value = make_url(value).render_as_string(hide_password=True)
        elif name == "rate_limit_storage":
            from assetfiles.server.rate_windows import without_password

            value = without_password(value)
        elif isinstance(value, Path):
            value = str(value)
        shown[name] = value
    return shown
