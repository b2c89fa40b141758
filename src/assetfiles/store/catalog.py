"""The catalog: every SQL statement of assetfiles, behind plain async methods.

Every method that reads or writes an organization's objects takes its ``org_id`` and puts it in
the WHERE clause, so that isolation does not depend on the caller remembering to check.

Each public method is written as ordinary blocking SQLAlchemy code and runs, whole, in a worker
thread (see :func:`in_thread`): one hop between the event loop and a thread per call, however
many statements it makes, instead of one or more per statement with an async driver. A download
costs one catalog call; a listing page three statements in that one call.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from assetfiles.model import (
    Asset,
    Association,
    ChannelId,
    Content,
    ContentQuery,
    Creator,
    CreatorKind,
    DeviceRef,
    EnosFacet,
    Page,
    Permission,
    Quota,
    Signal,
    StoredFile,
    TokenRecord,
    now_ms,
)
from assetfiles.store import changes
from assetfiles.store.schema import (
    api_tokens,
    assets,
    association_counts,
    content_associations,
    content_tags,
    contents,
    devices,
    org_quotas,
    org_usage,
    organizations,
    products,
    signals,
    uploads,
)
from assetfiles.store.threads import in_thread


class OverQuota(Exception):
    """Inserting would take an organization past its stored-bytes quota; nothing was written."""


class TooManyPending(Exception):
    """An organization holds as many unused upload reservations as it may; nothing was written."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry in {retry_after} s")
        #: seconds until the oldest pending reservation expires
        self.retry_after = retry_after


class _AlreadyGone(Exception):
    """Raised inside a transaction to roll it back: a concurrent delete removed the row first."""


class SecretInUse(Exception):
    """Another token already has this secret; nothing was written."""


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern escaped with ``\\``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def glob_to_like(pattern: str) -> str:
    """Translate a shell glob (``*``, ``?``) to a LIKE pattern escaped with ``\\``."""
    return escape_like(pattern).replace("*", "%").replace("?", "_")


class Catalog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @in_thread
    def close(self) -> None:
        self.engine.dispose()

    # -- organizations, tokens, products, devices --------------------------------------------

    @in_thread
    def upsert_organization(self, org_id: str, name: str) -> None:
        with self.engine.begin() as conn:
            found = conn.scalar(select(organizations.c.id).where(organizations.c.id == org_id))
            if found is None:
                conn.execute(insert(organizations).values(id=org_id, name=name, created_at=now_ms()))
            else:
                conn.execute(update(organizations).where(organizations.c.id == org_id).values(name=name))

    @in_thread
    def organization_exists(self, org_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(select(organizations.c.id).where(organizations.c.id == org_id)) is not None

    @in_thread
    def upsert_token(
        self,
        org_id: str,
        name: str,
        secret_hash: str | None,
        permissions: Iterable[Permission],
        expires_at: int | None = None,
    ) -> bool:
        """Create or update a token; ``secret_hash=None`` keeps an existing secret. True if created.

        A new secret (or a re-created token) clears a revocation.
        """
        perms = ",".join(sorted(p.value for p in permissions))
        where = and_(api_tokens.c.org_id == org_id, api_tokens.c.name == name)
        try:
            with self.engine.begin() as conn:
                found = conn.scalar(select(api_tokens.c.pk).where(where))
                if found is None:
                    if secret_hash is None:
                        raise ValueError("a new token needs a secret")
                    conn.execute(
                        insert(api_tokens).values(
                            org_id=org_id,
                            name=name,
                            secret_hash=secret_hash,
                            permissions=perms,
                            created_at=now_ms(),
                            expires_at=expires_at,
                        )
                    )
                    return True
                values: dict[str, Any] = {"permissions": perms, "expires_at": expires_at}
                if secret_hash is not None:
                    values.update(secret_hash=secret_hash, revoked_at=None)
                conn.execute(update(api_tokens).where(where).values(**values))
                return False
        except IntegrityError as exc:
            raise SecretInUse("that token secret is already in use") from exc

    @in_thread
    def token_exists(self, org_id: str, name: str) -> bool:
        with self.engine.connect() as conn:
            query = select(api_tokens.c.pk).where(api_tokens.c.org_id == org_id, api_tokens.c.name == name)
            return conn.scalar(query) is not None

    @in_thread
    def revoke_token(self, org_id: str, name: str, now: int) -> bool:
        """Revoke a token that is not revoked yet; False when there is no such token to revoke."""
        with self.engine.begin() as conn:
            revoked = conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.org_id == org_id,
                    api_tokens.c.name == name,
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            return bool(revoked.rowcount)

    @in_thread
    def list_tokens(self, org_id: str | None) -> list[TokenRecord]:
        query = select(api_tokens).order_by(api_tokens.c.org_id, api_tokens.c.name)
        if org_id is not None:
            query = query.where(api_tokens.c.org_id == org_id)
        with self.engine.connect() as conn:
            return [_token_record(row) for row in conn.execute(query)]

    @in_thread
    def get_token(self, org_id: str, name: str) -> TokenRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_tokens).where(api_tokens.c.org_id == org_id, api_tokens.c.name == name)
            ).first()
        return _token_record(row) if row is not None else None

    @in_thread
    def find_token(self, secret_hash: str) -> tuple[str, TokenRecord] | None:
        """The token whose secret hashes to ``secret_hash``, and its stored hash for a constant-time check."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.secret_hash == secret_hash)).first()
        if row is None:
            return None
        permissions = frozenset(Permission(p) for p in row.permissions.split(",") if p)
        record = TokenRecord(
            row.org_id,
            row.name,
            permissions,
            row.created_at,
            row.expires_at,
            row.revoked_at,
            row.last_used_at,
        )
        return row.secret_hash, record

    @in_thread
    def rehash_token(self, old_hash: str, new_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(api_tokens).where(api_tokens.c.secret_hash == old_hash).values(secret_hash=new_hash)
            )

    @in_thread
    def token_used(self, org_id: str, name: str, now: int, resolution_ms: int) -> bool:
        """Record a use unless one within ``resolution_ms`` is recorded already (by any process);
        True when this call wrote it."""
        with self.engine.begin() as conn:
            written = conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.org_id == org_id,
                    api_tokens.c.name == name,
                    or_(
                        api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at <= now - resolution_ms
                    ),
                )
                .values(last_used_at=now)
            )
            return bool(written.rowcount)

    @in_thread
    def upsert_product(self, org_id: str, product_id: str, name: str | None = None) -> None:
        with self.engine.begin() as conn:
            self._upsert_product(conn, org_id, product_id, name)

    @staticmethod
    def _upsert_product(conn: Connection, org_id: str, product_id: str, name: str | None = None) -> None:
        where = and_(products.c.org_id == org_id, products.c.id == product_id)
        if conn.scalar(select(products.c.id).where(where)) is None:
            conn.execute(insert(products).values(org_id=org_id, id=product_id, name=name))

    @in_thread
    def upsert_device(self, org_id: str, device: DeviceRef, secret_hash: str | None) -> bool:
        """Create a device or update its credential (``None`` keeps the current one). True if created."""
        where = and_(
            devices.c.org_id == org_id,
            devices.c.product_id == device.product_id,
            devices.c.id == device.device_id,
        )
        with self.engine.begin() as conn:
            self._upsert_product(conn, org_id, device.product_id)
            if conn.scalar(select(devices.c.id).where(where)) is None:
                conn.execute(
                    insert(devices).values(
                        org_id=org_id,
                        product_id=device.product_id,
                        id=device.device_id,
                        secret_hash=secret_hash,
                        created_at=now_ms(),
                    )
                )
                return True
            if secret_hash is not None:
                conn.execute(update(devices).where(where).values(secret_hash=secret_hash))
            return False

    @in_thread
    def device_credential(self, org_id: str, device: DeviceRef) -> str | None:
        """The stored credential hash of a device; None when the device or its credential is absent."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(devices.c.secret_hash).where(
                    devices.c.org_id == org_id,
                    devices.c.product_id == device.product_id,
                    devices.c.id == device.device_id,
                )
            )

    @in_thread
    def find_devices(self, device: DeviceRef) -> list[tuple[str, str | None]]:
        """(org_id, credential hash) of every organization holding a device of that name."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(devices.c.org_id, devices.c.secret_hash).where(
                    devices.c.product_id == device.product_id, devices.c.id == device.device_id
                )
            )
            return [(row.org_id, row.secret_hash) for row in rows]

    # -- assets ------------------------------------------------------------------------------

    @in_thread
    def upsert_asset(self, asset: Asset) -> None:
        """Create or replace an asset and its signals in one transaction."""
        now = now_ms()
        values = {
            "name": asset.name,
            "description": asset.description,
            "meta": json.dumps(asset.meta),
            "updated_at": now,
        }
        where = and_(assets.c.org_id == asset.org_id, assets.c.id == asset.id)
        with self.engine.begin() as conn:
            if conn.scalar(select(assets.c.id).where(where)) is None:
                conn.execute(
                    insert(assets).values(org_id=asset.org_id, id=asset.id, created_at=now, **values)
                )
            else:
                conn.execute(update(assets).where(where).values(**values))
            conn.execute(
                delete(signals).where(signals.c.org_id == asset.org_id, signals.c.asset_id == asset.id)
            )
            if asset.signals:
                conn.execute(
                    insert(signals),
                    [
                        {
                            "org_id": asset.org_id,
                            "asset_id": asset.id,
                            "id": signal.id,
                            "position": position,
                            "name": signal.name,
                            "product_id": signal.channel.device.product_id,
                            "device_id": signal.channel.device.device_id,
                            "channel": signal.channel.channel,
                            "properties": json.dumps(signal.properties),
                        }
                        for position, signal in enumerate(asset.signals)
                    ],
                )

    @in_thread
    def get_asset(self, org_id: str, asset_id: str) -> Asset | None:
        with self.engine.connect() as conn:
            query = select(assets).where(assets.c.org_id == org_id, assets.c.id == asset_id)
            found = self._with_signals(conn, org_id, conn.execute(query).all())
            return found[0] if found else None

    @in_thread
    def asset_exists(self, org_id: str, asset_id: str) -> bool:
        with self.engine.connect() as conn:
            query = select(assets.c.id).where(assets.c.org_id == org_id, assets.c.id == asset_id)
            return conn.scalar(query) is not None

    @in_thread
    def feeding_devices(self, org_id: str, asset_id: str) -> frozenset[DeviceRef]:
        """The devices whose channels feed the asset's signals (empty for an unknown asset)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(signals.c.product_id, signals.c.device_id)
                .where(signals.c.org_id == org_id, signals.c.asset_id == asset_id)
                .distinct()
            )
            return frozenset(DeviceRef(row.product_id, row.device_id) for row in rows)

    @in_thread
    def list_assets(
        self, org_id: str, text: str | None, ids: Sequence[str] | None, limit: int, offset: int
    ) -> list[Asset]:
        conditions = _asset_conditions(org_id, text, ids)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(assets)
                .where(*conditions)
                .order_by(assets.c.name, assets.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return self._with_signals(conn, org_id, rows)

    @in_thread
    def count_assets(self, org_id: str, text: str | None, ids: Sequence[str] | None) -> int:
        with self.engine.connect() as conn:
            return (
                conn.scalar(
                    select(func.count()).select_from(assets).where(*_asset_conditions(org_id, text, ids))
                )
                or 0
            )

    def _with_signals(self, conn: Connection, org_id: str, rows: Sequence[Row[Any]]) -> list[Asset]:
        ids = [row.id for row in rows]
        by_asset: dict[str, list[Signal]] = {asset_id: [] for asset_id in ids}
        if ids:
            signal_rows = conn.execute(
                select(signals)
                .where(signals.c.org_id == org_id, signals.c.asset_id.in_(ids))
                .order_by(signals.c.asset_id, signals.c.position)
            )
            for sig in signal_rows:
                channel = ChannelId(DeviceRef(sig.product_id, sig.device_id), sig.channel)
                by_asset[sig.asset_id].append(Signal(sig.id, sig.name, channel, json.loads(sig.properties)))
        return [
            Asset(
                org_id=row.org_id,
                id=row.id,
                name=row.name,
                description=row.description,
                meta=json.loads(row.meta),
                signals=tuple(by_asset[row.id]),
            )
            for row in rows
        ]

    # -- contents ----------------------------------------------------------------------------

    @in_thread
    def insert_contents(self, batch: Sequence[Content], max_total_bytes: int | None = None) -> None:
        """Insert many contents in one transaction: all of them or, on any error, none.

        With ``max_total_bytes``, only if their organization stays within it: checked and charged
        in the same transaction, so concurrent uploads cannot overshoot it together.
        """
        with self.engine.begin() as conn:
            self._insert_contents(conn, batch, max_total_bytes)

    def _insert_contents(
        self, conn: Connection, batch: Sequence[Content], max_total_bytes: int | None = None
    ) -> None:
        if not batch:
            return
        usage: dict[str, list[int]] = {}
        for content in batch:
            charged = usage.setdefault(content.org_id, [0, 0])
            charged[0] += content.length
            charged[1] += 1
        for org_id, (size, count) in usage.items():
            self._charge(conn, org_id, size, count, max_total_bytes)
        conn.execute(insert(contents), [_content_values(content) for content in batch])
        changes.record(conn, "created", [(c.org_id, c.id, c.associations, c.updated_at) for c in batch])
        ids = [content.id for content in batch]
        pks: dict[str, int] = {}
        for start in range(0, len(ids), 5000):
            rows = conn.execute(
                select(contents.c.id, contents.c.pk).where(contents.c.id.in_(ids[start : start + 5000]))
            )
            pks.update({row.id: row.pk for row in rows})
        tag_rows = [
            {"content_pk": pks[content.id], "name": name, "value": value}
            for content in batch
            for name, value in content.tags.items()
        ]
        if tag_rows:
            conn.execute(insert(content_tags), tag_rows)
        link_rows: list[dict[str, Any]] = [
            {
                "content_pk": pks[content.id],
                "type": association.type,
                "target_id": association.id,
                "org_id": content.org_id,
                "updated_at": content.updated_at,
                "created_at": content.created_at,
                "name": content.name,
                "length": content.length,
                "content_type": content.content_type,
            }
            for content in batch
            for association in dict.fromkeys(content.associations)
        ]
        if link_rows:
            conn.execute(insert(content_associations), link_rows)
            added: Counter[tuple[str, str, str]] = Counter()
            for link in link_rows:
                added[(link["org_id"], link["type"], link["target_id"])] += 1
            self._bump_counts(conn, added)

    @staticmethod
    def _charge(conn: Connection, org_id: str, size: int, count: int, limit: int | None) -> None:
        """Add to the organization's usage; with ``limit``, refuse (OverQuota) past it."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(org_usage).values(org_id=org_id, bytes=0, contents=0).on_conflict_do_nothing()
        )
        condition = org_usage.c.org_id == org_id
        if limit is not None and size > 0:
            condition = and_(condition, org_usage.c.bytes + size <= limit)
        charged = conn.execute(
            update(org_usage)
            .where(condition)
            .values(bytes=org_usage.c.bytes + size, contents=org_usage.c.contents + count)
        )
        if charged.rowcount == 0:
            raise OverQuota(f"organization '{org_id}' would hold more than {limit} bytes")

    @staticmethod
    def _bump_counts(conn: Connection, deltas: Counter[tuple[str, str, str]]) -> None:
        """Add ``deltas`` to the per-target content counts (an upsert on both SQLite and PostgreSQL)."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        for (org_id, kind, target_id), delta in deltas.items():
            if delta == 0:
                continue
            statement = dialect.insert(association_counts).values(
                org_id=org_id, type=kind, target_id=target_id, contents=delta
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["org_id", "type", "target_id"],
                    set_={"contents": association_counts.c.contents + delta},
                )
            )

    @staticmethod
    def _write_tags(conn: Connection, pk: int, tags: dict[str, str]) -> None:
        conn.execute(delete(content_tags).where(content_tags.c.content_pk == pk))
        if tags:
            conn.execute(
                insert(content_tags), [{"content_pk": pk, "name": n, "value": v} for n, v in tags.items()]
            )

    def _touch(self, conn: Connection, pk: int, **values: Any) -> None:
        """Update a content row and the sort keys copied into its association rows."""
        conn.execute(update(contents).where(contents.c.pk == pk).values(**values))
        copied = {key: value for key, value in values.items() if key in content_associations.c}
        if copied:
            conn.execute(
                update(content_associations).where(content_associations.c.content_pk == pk).values(**copied)
            )

    def _content_pk(self, conn: Connection, org_id: str, content_id: str) -> int | None:
        return conn.scalar(
            select(contents.c.pk).where(contents.c.org_id == org_id, contents.c.id == content_id)
        )

    @in_thread
    def set_tags(self, org_id: str, content_id: str, tags: dict[str, str], updated_at: int) -> bool:
        with self.engine.begin() as conn:
            pk = self._content_pk(conn, org_id, content_id)
            if pk is None:
                return False
            self._write_tags(conn, pk, tags)
            self._touch(conn, pk, updated_at=updated_at)
            changes.record(conn, "updated", [(org_id, content_id, changes.links_of(conn, pk), updated_at)])
            return True

    @in_thread
    def replace_bytes(
        self,
        org_id: str,
        content_id: str,
        *,
        sha256: str,
        md5: str,
        length: int,
        content_type: str,
        updated_at: int,
    ) -> bool:
        """Give a content new bytes; the organization's usage follows the change in length."""
        with self.engine.begin() as conn:
            # Charged from the length the UPDATE replaces (RETURNING gives only the new row, so the
            # UPDATE is conditional on the length read, and read again if a concurrent replacement
            # changed it in between).
            while True:
                row = conn.execute(
                    select(contents.c.pk, contents.c.length).where(
                        contents.c.org_id == org_id, contents.c.id == content_id
                    )
                ).first()
                if row is None:
                    return False
                replaced = conn.execute(
                    update(contents)
                    .where(contents.c.pk == row.pk, contents.c.length == row.length)
                    .values(length=length)
                )
                if replaced.rowcount == 1:
                    break
            pk = row.pk
            self._charge(conn, org_id, length - row.length, 0, None)
            self._touch(
                conn,
                pk,
                sha256=sha256,
                md5=md5,
                length=length,
                content_type=content_type,
                updated_at=updated_at,
            )
            changes.record(conn, "updated", [(org_id, content_id, changes.links_of(conn, pk), updated_at)])
            return True

    @in_thread
    def delete_content(
        self, org_id: str, content_id: str, *, unmodified_since: int | None = None
    ) -> str | None:
        """Delete a content row; returns its sha256, or None if there was no such content (or,
        with ``unmodified_since``, it was modified after that).

        Usage, counts and the change log follow only a DELETE that removed the row: of deletes
        racing for one content (any face, any process), one charges its size back and records
        the change, the others find it gone and roll back.
        """
        try:
            with self.engine.begin() as conn:
                pk = self._content_pk(conn, org_id, content_id)
                if pk is None:
                    return None
                conn.execute(delete(content_tags).where(content_tags.c.content_pk == pk))
                wanted = contents.c.pk == pk
                if unmodified_since is not None:
                    wanted = and_(wanted, contents.c.updated_at <= unmodified_since)
                links = conn.execute(
                    delete(content_associations)
                    .where(content_associations.c.content_pk == pk)
                    .returning(
                        content_associations.c.org_id,
                        content_associations.c.type,
                        content_associations.c.target_id,
                    )
                ).all()
                row = conn.execute(
                    delete(contents).where(wanted).returning(contents.c.sha256, contents.c.length)
                ).first()
                if row is None:
                    raise _AlreadyGone
                self._charge(conn, org_id, -row.length, -1, None)
                removed: Counter[tuple[str, str, str]] = Counter()
                for link in links:
                    removed[(link.org_id, link.type, link.target_id)] -= 1
                self._bump_counts(conn, removed)
                associations = [Association(link.type, link.target_id) for link in links]
                changes.record(conn, "deleted", [(org_id, content_id, associations, now_ms())])
                return str(row.sha256)
        except _AlreadyGone:
            return None

    @in_thread
    def blob_in_use(self, sha256: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.scalar(select(exists().where(contents.c.sha256 == sha256))))

    @in_thread
    def blobs_in_use(self, sha256s: Sequence[str]) -> set[str]:
        """Which of these digests some content row references (one query per batch)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(contents.c.sha256).where(contents.c.sha256.in_(list(sha256s))).distinct()
            )
            return {row.sha256 for row in rows}

    @in_thread
    def stored_files_after(self, after_pk: int, limit: int) -> list[tuple[int, StoredFile]]:
        """Contents in primary-key order, for a walk of the whole catalog a page at a time."""
        statement = (
            select(contents.c.pk, contents.c.id, contents.c.org_id, contents.c.name, contents.c.content_type,
                   contents.c.length, contents.c.sha256, contents.c.updated_at)
            .where(contents.c.pk > after_pk)
            .order_by(contents.c.pk)
            .limit(limit)
        )  # fmt: skip
        with self.engine.connect() as conn:
            return [
                (row.pk, StoredFile(row.id, row.org_id, row.name, row.content_type, row.length, row.sha256,
                                    row.updated_at))
                for row in conn.execute(statement)
            ]  # fmt: skip

    @in_thread
    def get_content(self, org_id: str, content_id: str) -> Content | None:
        return self._first_content(
            select(contents).where(contents.c.org_id == org_id, contents.c.id == content_id)
        )

    @in_thread
    def get_contents(self, org_id: str, content_ids: Sequence[str]) -> dict[str, Content]:
        """Several contents by id in one hop (unknown ids are simply absent)."""
        statement = select(contents).where(contents.c.org_id == org_id, contents.c.id.in_(list(content_ids)))
        with self.engine.connect() as conn:
            return {content.id: content for content in self._with_extras(conn, conn.execute(statement).all())}

    @in_thread
    def get_content_by_enos_uri(self, org_id: str, file_uri: str) -> Content | None:
        return self._first_content(
            select(contents).where(contents.c.org_id == org_id, contents.c.enos_file_uri == file_uri)
        )

    def _first_content(self, statement: Select[Any]) -> Content | None:
        with self.engine.connect() as conn:
            found = self._with_extras(conn, conn.execute(statement).all())
            return found[0] if found else None

    @in_thread
    def get_stored_file(self, org_id: str, content_id: str) -> StoredFile | None:
        """The hot path of every download: one row, no tags or associations."""
        with self.engine.connect() as conn:
            row = conn.execute(_STORED_FILE, {"org_id": org_id, "content_id": content_id}).first()
        if row is None:
            return None
        return StoredFile(
            content_id, org_id, row.name, row.content_type, row.length, row.sha256, row.updated_at
        )

    @in_thread
    def find_content_by_name(self, org_id: str, association: Association, name: str) -> Content | None:
        """The newest content of that name on that association (how fixtures stay idempotent)."""
        newest = (
            select(content_associations.c.content_pk)
            .where(
                content_associations.c.org_id == org_id,
                content_associations.c.type == association.type,
                content_associations.c.target_id == association.id,
                content_associations.c.name == name,
            )
            .order_by(content_associations.c.content_pk.desc())
            .limit(1)
            .scalar_subquery()
        )
        return self._first_content(select(contents).where(contents.c.pk == newest))

    @in_thread
    def list_contents(self, query: ContentQuery) -> Page[Content]:
        page, count = self._listing_statements(query)
        counted = self._counted_total(query)
        if counted is not None:
            count = counted
        with self.engine.connect() as conn:
            total: int = conn.scalar(count) or 0
            if total <= query.offset:
                return Page([], total)
            rows = conn.execute(page).all()
            last_key = None
            if len(rows) == query.limit:
                last = rows[-1]._mapping
                last_key = (last[query.order_by.value], last["pk"])
            return Page(self._with_extras(conn, rows), total, last_key)

    @in_thread
    def target_sizes(self, org_id: str, targets: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """How many contents each (type, id) association target holds, from the kept counts."""
        found: dict[tuple[str, str], int] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(targets), 500):
                chunk = targets[start : start + 500]
                counts = association_counts.c
                wanted = or_(
                    *(and_(counts.type == kind, counts.target_id == target) for kind, target in chunk)
                )
                rows = conn.execute(
                    select(counts.type, counts.target_id, counts.contents).where(
                        counts.org_id == org_id, wanted
                    )
                )
                found.update({(row.type, row.target_id): int(row.contents) for row in rows})
        return found

    @staticmethod
    def _counted_total(query: ContentQuery) -> Select[Any] | None:
        """The total from ``association_counts`` when no filter narrows the targets' contents."""
        narrowed = query.ids is not None or query.content_types or query.tags or query.name_glob
        targets = _targets(query)
        if narrowed or query.modified_since is not None or targets is None:
            return None
        kind, ids = targets
        return select(func.coalesce(func.sum(association_counts.c.contents), 0)).where(
            association_counts.c.org_id == query.org_id,
            association_counts.c.type == kind,
            association_counts.c.target_id.in_(ids),
        )

    @staticmethod
    def _listing_statements(query: ContentQuery) -> tuple[Select[Any], Select[Any]]:
        """One page of content rows and the total, each walking one composite index."""
        base: Any
        if (found := _targets(query)) is not None:
            base = content_associations
            key = base.c.content_pk
            kind, targets = found
            conditions: list[Any] = [base.c.org_id == query.org_id, base.c.type == kind]
            conditions.append(
                base.c.target_id == targets[0] if len(targets) == 1 else base.c.target_id.in_(targets)
            )
        else:
            base = contents
            key = base.c.pk
            conditions = [base.c.org_id == query.org_id]
        if query.ids is not None:
            if base is contents:
                conditions.append(contents.c.id.in_(query.ids))
            else:
                conditions.append(key.in_(select(contents.c.pk).where(contents.c.id.in_(query.ids))))
        if query.content_types:
            conditions.append(base.c.content_type.in_(query.content_types))
        if query.name_glob is not None:
            conditions.append(
                func.lower(base.c.name).like(glob_to_like(query.name_glob).lower(), escape="\\")
            )
        if query.modified_since is not None:
            conditions.append(base.c.updated_at >= query.modified_since)
        for tag_name, tag_value in query.tags:
            tag_match = [content_tags.c.content_pk == key, content_tags.c.name == tag_name]
            if tag_value is not None:
                tag_match.append(content_tags.c.value == tag_value)
            conditions.append(exists().where(*tag_match))
        # the total counts every row the filters match, wherever the page starts
        count = select(func.count()).select_from(base).where(*conditions)
        if query.after is not None:
            value, after_pk = query.after
            column = base.c[query.order_by.value]
            if query.descending:
                conditions = [*conditions, column <= value, or_(column < value, key < after_pk)]
            else:
                conditions = [*conditions, column >= value, or_(column > value, key > after_pk)]
        keys = (
            select(key.label("key"))
            .where(*conditions)
            .order_by(*_ordering(base.c[query.order_by.value], key, query.descending))
            .limit(query.limit)
            .offset(query.offset)
            .subquery()
        )
        # The index walk above picks the page's keys; this re-sorts just those rows (same keys,
        # same collation) while fetching them, in the same round trip.
        page = (
            select(contents)
            .join(keys, contents.c.pk == keys.c.key)
            .order_by(*_ordering(contents.c[query.order_by.value], contents.c.pk, query.descending))
        )
        return page, count

    @staticmethod
    def _with_extras(conn: Connection, rows: Sequence[Row[Any]]) -> list[Content]:
        """Build contents from their rows, fetching tags and associations in one query."""
        if not rows:
            return []
        keys = [row.pk for row in rows]
        tags: dict[int, dict[str, str]] = {pk: {} for pk in keys}
        links: dict[int, list[Association]] = {pk: [] for pk in keys}
        for pk, kind, first, second in conn.execute(_EXTRAS, {"keys": keys}):
            if kind == "tag":
                tags[pk][first] = second
            else:
                links[pk].append(Association(first, second))
        return [_content_from_row(row, tags[row.pk], links[row.pk]) for row in rows]

    # -- pending uploads ---------------------------------------------------------------------

    @in_thread
    def insert_upload(
        self,
        upload_id: str,
        org_id: str,
        spec: dict[str, Any],
        expires_at: int,
        *,
        max_pending: int | None = None,
    ) -> None:
        """Record a reservation; with ``max_pending``, refuse (TooManyPending) past that many unused
        reservations in the organization. Expired ones are cleared first."""
        now = now_ms()
        with self.engine.begin() as conn:
            conn.execute(delete(uploads).where(uploads.c.expires_at < now))
            if max_pending is not None:
                mine = uploads.c.org_id == org_id
                pending, soonest = conn.execute(
                    select(func.count(), func.min(uploads.c.expires_at)).where(mine)
                ).one()
                if pending >= max_pending:
                    raise TooManyPending(max(1, math.ceil((soonest - now) / 1000)))
            conn.execute(
                insert(uploads).values(
                    id=upload_id, org_id=org_id, spec=json.dumps(spec), expires_at=expires_at
                )
            )

    @in_thread
    def get_upload(self, upload_id: str, org_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            spec = conn.scalar(
                select(uploads.c.spec).where(uploads.c.id == upload_id, uploads.c.org_id == org_id)
            )
        return json.loads(spec) if spec is not None else None

    @in_thread
    def complete_upload(self, upload_id: str, content: Content, max_total_bytes: int | None = None) -> bool:
        """Insert the uploaded content and retire its upload record; False if already completed."""
        with self.engine.begin() as conn:
            removed = conn.execute(delete(uploads).where(uploads.c.id == upload_id))
            if removed.rowcount == 0:
                return False
            self._insert_contents(conn, [content], max_total_bytes)
            return True

    # -- quotas and usage ----------------------------------------------------------------------

    @in_thread
    def get_quota(self, org_id: str) -> Quota | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(org_quotas).where(org_quotas.c.org_id == org_id)).first()
        return None if row is None else _quota(row)

    @in_thread
    def set_quota(self, org_id: str, quota: Quota | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(org_quotas).where(org_quotas.c.org_id == org_id))
            if quota is not None:
                types = json.dumps(list(quota.content_types)) if quota.content_types is not None else None
                conn.execute(
                    insert(org_quotas).values(
                        org_id=org_id,
                        max_total_bytes=quota.max_total_bytes,
                        max_file_bytes=quota.max_file_bytes,
                        content_types=types,
                    )
                )

    @in_thread
    def usage(self, org_id: str | None = None) -> dict[str, tuple[int, int, Quota | None]]:
        """org -> (bytes, contents, quota): one organization's, or every organization's, in one query."""
        query = (
            select(
                organizations.c.id,
                org_usage.c.bytes,
                org_usage.c.contents,
                org_quotas.c.org_id.label("quota_org"),
                org_quotas.c.max_total_bytes,
                org_quotas.c.max_file_bytes,
                org_quotas.c.content_types,
            )
            .outerjoin(org_usage, org_usage.c.org_id == organizations.c.id)
            .outerjoin(org_quotas, org_quotas.c.org_id == organizations.c.id)
        )
        if org_id is not None:
            query = query.where(organizations.c.id == org_id)
        with self.engine.connect() as conn:
            return {
                row.id: (row.bytes or 0, row.contents or 0, _quota(row) if row.quota_org else None)
                for row in conn.execute(query.order_by(organizations.c.id))
            }


def _quota(row: Any) -> Quota:
    """A quota from a row that has the org_quotas columns (the table's own, or a join's)."""
    types = tuple(json.loads(row.content_types)) if row.content_types is not None else None
    return Quota(row.max_total_bytes, row.max_file_bytes, types)


def _token_record(row: Row[Any]) -> TokenRecord:
    permissions = frozenset(Permission(p) for p in row.permissions.split(",") if p)
    return TokenRecord(
        row.org_id, row.name, permissions, row.created_at, row.expires_at, row.revoked_at, row.last_used_at
    )


def _asset_conditions(org_id: str, text: str | None, ids: Sequence[str] | None) -> list[Any]:
    """An organization's assets, those named in ``ids``, whose name or id contains ``text``."""
    conditions: list[Any] = [assets.c.org_id == org_id]
    if ids is not None:
        conditions.append(assets.c.id.in_(ids))
    if text:
        pattern = f"%{escape_like(text.lower())}%"
        conditions.append(
            or_(
                func.lower(assets.c.name).like(pattern, escape="\\"),
                func.lower(assets.c.id).like(pattern, escape="\\"),
            )
        )
    return conditions


def _extras_statement() -> Select[Any]:
    """Tags and associations of a set of contents, as one statement built once."""
    keys: BindParameter[list[int]] = bindparam("keys", expanding=True)
    extras = union_all(
        select(
            content_tags.c.content_pk, literal("tag").label("kind"), content_tags.c.name, content_tags.c.value
        ).where(content_tags.c.content_pk.in_(keys)),
        select(
            content_associations.c.content_pk,
            literal("link").label("kind"),
            content_associations.c.type,
            content_associations.c.target_id,
        ).where(content_associations.c.content_pk.in_(keys)),
    ).subquery()
    return select(extras).order_by(extras.c.content_pk, extras.c.kind, extras.c.name, extras.c.value)


_EXTRAS = _extras_statement()
_STORED_FILE = select(
    contents.c.name, contents.c.content_type, contents.c.length, contents.c.sha256, contents.c.updated_at
).where(contents.c.org_id == bindparam("org_id"), contents.c.id == bindparam("content_id"))


def _ordering(column: Any, key: Any, descending: bool) -> tuple[Any, Any]:
    return (column.desc(), key.desc()) if descending else (column.asc(), key.asc())


def _targets(query: ContentQuery) -> tuple[str, list[str]] | None:
    """The association type and target ids a listing walks, or None for a whole-organization listing."""
    if query.devices is not None:
        return "device", sorted({str(device) for device in query.devices})
    if query.association is not None:
        return query.association.type, [query.association.id]
    return None


def _content_values(content: Content) -> dict[str, Any]:
    creator, enos = content.creator, content.enos
    return {
        "id": content.id,
        "org_id": content.org_id,
        "name": content.name,
        "content_type": content.content_type,
        "type": content.type,
        "length": content.length,
        "sha256": content.sha256,
        "md5": content.md5,
        "creator_kind": creator.kind.value,
        "creator_name": creator.name,
        "creator_product_id": creator.device.product_id if creator.device else None,
        "creator_device_id": creator.device.device_id if creator.device else None,
        "created_at": content.created_at,
        "updated_at": content.updated_at,
        "enos_file_uri": enos.file_uri if enos else None,
        "enos_category": enos.category if enos else None,
        "enos_feature_type": enos.feature_type if enos else None,
        "enos_feature_id": enos.feature_id if enos else None,
    }


def _content_from_row(row: Row[Any], tags: dict[str, str], links: list[Association]) -> Content:
    kind = CreatorKind(row.creator_kind)
    device = DeviceRef(row.creator_product_id, row.creator_device_id) if kind is CreatorKind.DEVICE else None
    enos = (
        EnosFacet(row.enos_file_uri, row.enos_category, row.enos_feature_type, row.enos_feature_id)
        if row.enos_file_uri
        else None
    )
    return Content(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        content_type=row.content_type,
        type=row.type,
        length=row.length,
        sha256=row.sha256,
        md5=row.md5,
        creator=Creator(kind=kind, name=row.creator_name, device=device),
        created_at=row.created_at,
        updated_at=row.updated_at,
        tags=tags,
        associations=tuple(links),
        enos=enos,
    )
