"""The catalog's tables, in SQLAlchemy Core; Alembic migrations create exactly these.

Listing is the hot path: ``content_associations`` repeats the content's sort keys (updated_at,
created_at, name, length, content_type) so that one asset's page is a walk of one composite
index with no sort and no join until the page's own rows are fetched. ``contents`` carries the
same keys for listings across a whole organization.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    # sha256 of the secret: tokens are looked up by it, and the secret itself is never stored.
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("permissions", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # lifecycle: an expired or revoked token answers exactly like an unknown one
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    # written at most once a minute per token (Access.token_principal), so cheap to keep
    Column("last_used_at", BigInteger),
    UniqueConstraint("org_id", "name"),
)

products = Table(
    "products",
    metadata,
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("name", String(255)),
)

devices = Table(
    "devices",
    metadata,
    Column("org_id", String(128), primary_key=True),
    Column("product_id", String(128), primary_key=True),
    Column("id", String(128), primary_key=True),
    # salted scrypt of the device credential, "scrypt$<salt hex>$<hash hex>"; null: no credential.
    Column("secret_hash", String(255)),
    # HMAC-SHA256 (server key) of the credential, kept once it passed the scrypt check: the fast
    # check of later requests. Null until then, and again whenever the credential changes.
    Column("secret_digest", String(64)),
    # The EnOS device login signs sha256(sorted parameters + secret), which only a server that can
    # read the secret checks: it is kept sealed (Fernet) under a key derived from the server key.
    # Null for devices provisioned before, or without a secret: they cannot use the EnOS login.
    Column("sealed_secret", Text),
    # Murano activation: null (not enabled), "enabled" (the next activation succeeds), "activated".
    Column("activation", String(16)),
    Column("created_at", BigInteger, nullable=False),
    ForeignKeyConstraint(["org_id", "product_id"], ["products.org_id", "products.id"], ondelete="CASCADE"),
    # a device's requests name it by product and id, not organization (its credential says which)
    Index("ix_devices_product_device", "product_id", "id"),
)

device_sessions = Table(
    "device_sessions",
    metadata,
    # HMAC-SHA256 (server key) of the session id the device was given; the id itself is not kept.
    Column("digest", String(64), primary_key=True),
    Column("org_id", String(128), nullable=False),
    Column("product_id", String(128), nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("protocol", String(16), nullable=False),  # enos
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["org_id", "product_id", "device_id"],
        ["devices.org_id", "devices.product_id", "devices.id"],
        ondelete="CASCADE",
    ),
    Index("ix_device_sessions_device", "org_id", "product_id", "device_id", "created_at"),
)

device_messages = Table(
    "device_messages",
    metadata,
    # A message a device posted in a session, remembered so that the same message sent again (the
    # same request object re-published: same id, same files) gets the first answer, not a copy.
    Column(
        "session_digest",
        String(64),
        ForeignKey("device_sessions.digest", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("message_id", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # sha256 of the message and its files' sha256
    Column("answer", Text, nullable=False),  # the answer's data, JSON
    Column("created_at", BigInteger, nullable=False),
)

assets = Table(
    "assets",
    metadata,
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", Text),
    Column("meta", Text, nullable=False, default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_assets_org_name", "org_id", "name"),
)

signals = Table(
    "signals",
    metadata,
    Column("org_id", String(128), primary_key=True),
    Column("asset_id", String(128), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("name", String(255)),
    Column("product_id", String(128), nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("channel", String(128), nullable=False),
    Column("properties", Text, nullable=False, default="{}"),
    ForeignKeyConstraint(["org_id", "asset_id"], ["assets.org_id", "assets.id"], ondelete="CASCADE"),
    Index("ix_signals_device", "org_id", "product_id", "device_id"),
)

contents = Table(
    "contents",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("type", String(64), nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("md5", String(32), nullable=False),
    Column("creator_kind", String(16), nullable=False),
    Column("creator_name", String(255)),
    Column("creator_product_id", String(128)),
    Column("creator_device_id", String(128)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("enos_file_uri", String(128), unique=True),
    Column("enos_category", String(16)),
    Column("enos_feature_type", String(64)),
    Column("enos_feature_id", String(128)),
    # How the bytes arrived (model.UPLOAD_PATHS: graphql, device-api, enos-device, ...); null before
    # it was recorded.
    Column("via", String(32)),
    Index("ix_contents_sha256", "sha256"),
    Index("ix_contents_org_updated", "org_id", "updated_at", "pk"),
    Index("ix_contents_org_created", "org_id", "created_at", "pk"),
    Index("ix_contents_org_name", "org_id", "name", "pk"),
    Index("ix_contents_org_length", "org_id", "length", "pk"),
)

content_tags = Table(
    "content_tags",
    metadata,
    Column("content_pk", Integer, ForeignKey("contents.pk", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", String(1024), nullable=False),
)

content_associations = Table(
    "content_associations",
    metadata,
    Column("content_pk", Integer, ForeignKey("contents.pk", ondelete="CASCADE"), primary_key=True),
    Column("type", String(32), primary_key=True),
    Column("target_id", String(255), primary_key=True),
    Column("org_id", String(128), nullable=False),
    # Copies of the content's sort and filter keys; see the module docstring.
    Column("updated_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("name", String(255), nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Index("ix_content_associations_updated", "org_id", "type", "target_id", "updated_at", "content_pk"),
    Index("ix_content_associations_created", "org_id", "type", "target_id", "created_at", "content_pk"),
    Index("ix_content_associations_name", "org_id", "type", "target_id", "name", "content_pk"),
    Index("ix_content_associations_length", "org_id", "type", "target_id", "length", "content_pk"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    # JSON of the content-to-be (name, type, tags, associations, creator, declared length and sha256)
    Column("spec", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

resumable_uploads = Table(
    "resumable_uploads",
    metadata,
    # A tus upload in progress (service/resumable.py). Its bytes are in the upload spool; this row
    # is the truth about how many of them are acknowledged, so any server process can take the
    # next PATCH.
    Column("id", String(64), primary_key=True),
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    # who may continue it: "token", "device" (the device below) or "signed" (its signed URL)
    Column("owner", String(16), nullable=False),
    Column("device", String(255)),
    # JSON: the content-to-be (name, type, tags, associations, creator, reservation, metadata)
    Column("spec", Text, nullable=False),
    Column("length", BigInteger),  # null while deferred (creation-defer-length)
    Column("received", BigInteger, nullable=False),  # the acknowledged offset
    Column("concat", String(8)),  # "partial" or "final" (concatenation), else null
    Column("spool_state", Text, nullable=False),  # JSON kept by the spool backend (S3 parts)
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # the process appending to it now, until lease_until: concurrent PATCHes are refused
    Column("lease", String(64)),
    Column("lease_until", BigInteger),
    Column("content_id", String(64)),  # set, in the content's own transaction, once complete
    Index("ix_resumable_uploads_org_id", "org_id", "device"),
    Index("ix_resumable_uploads_expires_at", "expires_at"),
)

association_counts = Table(
    "association_counts",
    metadata,
    # How many contents each association target has: the totalCount of an unfiltered listing,
    # read in O(1) instead of counting up to hundreds of thousands of index entries.
    Column("org_id", String(128), primary_key=True),
    Column("type", String(32), primary_key=True),
    Column("target_id", String(255), primary_key=True),
    Column("contents", BigInteger, nullable=False),
)


# -- EnOS applications and the token service -----------------------------------------------

enos_applications = Table(
    "enos_applications",
    metadata,
    Column("app_key", String(128), primary_key=True),
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    # The token service checks sha256(appKey + timestamp + appSecret), so the secret itself must be
    # readable by the server: it is kept sealed (Fernet) under a key derived from the server key.
    Column("sealed_secret", Text, nullable=False),
    Column("policies", String(64), nullable=False),  # comma-separated: asset:read,asset:write
    Column("created_at", BigInteger, nullable=False),
)

enos_access_tokens = Table(
    "enos_access_tokens",
    metadata,
    # sha256 of the token; the token is an HMAC of (app_key, nonce) under the server key, so the
    # same one can be handed out again while it is valid without ever being stored.
    Column("token_hash", String(64), primary_key=True),
    Column(
        "app_key", String(128), ForeignKey("enos_applications.app_key", ondelete="CASCADE"), nullable=False
    ),
    Column("nonce", String(32), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_enos_access_tokens_app_key_expires_at", "app_key", "expires_at"),
)

enos_token_requests = Table(
    "enos_token_requests",
    metadata,
    # Each (operation, ``encryption``) obtains one token: sent again while that token is valid,
    # it gets the same one back (EnOS's samples sign once per process); otherwise 1001.
    Column("operation", String(16), primary_key=True),
    Column("encryption", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    # refresh only: the token it replaced, which a repeat must name again
    Column("access_token_hash", String(64)),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    # None for events of no organization (a failed sign-in with an unknown credential)
    Column("org_id", String(128)),
    Column("action", String(64), nullable=False),
    Column("face", String(32), nullable=False),
    Column("actor_kind", String(16)),
    Column("actor", String(256)),
    Column("target", String(256)),
    # failed sign-ins are counted per face and minute, not one row each
    Column("count", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_audit_events_org_id_at", "org_id", "at"),
    Index("ix_audit_events_at", "at"),
)

#: Every change to a content, in commit order: the feed behind ``GET /api/events``. Written in
#: the transaction that makes the change, so the feed never misses one nor shows one rolled back.
#: ``seq`` is the event id: numbered per organization from ``change_counters``, whose row lock
#: makes an organization's changes commit in the order of their ids (a sequence would not: a
#: transaction holding a lower id may commit after a reader has passed a higher one).
content_changes = Table(
    "content_changes",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("org_id", String(128), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("change", String(16), nullable=False),  # created, updated, deleted
    Column("content_id", String(64), nullable=False),
    Column("associations", Text, nullable=False),  # JSON [[type, id], ...]
    Index("ix_content_changes_org_seq", "org_id", "seq", unique=True),
    Index("ix_content_changes_at", "at"),
)

#: The last event id each organization's change log handed out (see ``content_changes``).
change_counters = Table(
    "change_counters",
    metadata,
    Column("org_id", String(128), primary_key=True),
    Column("last", BigInteger, nullable=False),
)

org_usage = Table(
    "org_usage",
    metadata,
    # Bytes and contents an organization holds (logical: identical bytes in two contents count
    # twice), kept with every content insert and delete; quotas are checked against it.
    Column("org_id", String(128), primary_key=True),
    Column("bytes", BigInteger, nullable=False),
    Column("contents", BigInteger, nullable=False),
)

org_quotas = Table(
    "org_quotas",
    metadata,
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("max_total_bytes", BigInteger),
    Column("max_file_bytes", BigInteger),
    # JSON list of media types or "type/*" patterns; None means any
    Column("content_types", Text),
)

retention_policies = Table(
    "retention_policies",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("org_id", String(128), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    # each narrows which contents the policy covers; None means any
    Column("asset_id", String(128)),
    Column("content_type", String(255)),
    Column("name_prefix", String(255)),
    # what it does: delete after N days without modification, keep the newest N per target
    Column("delete_after_days", Integer),
    Column("keep_per_target", Integer),
)

leases = Table(
    "leases",
    metadata,
    # a named job that one process at a time may run (retention), until expires_at
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
