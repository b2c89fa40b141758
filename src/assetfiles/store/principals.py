"""Organizations and who may act in them: API tokens, products and devices (with their credential
hashes). The store of the principals aggregate; see :mod:`assetfiles.store.sql`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from assetfiles.model import DeviceCredential, DeviceRef, DeviceSession, Permission, TokenRecord, now_ms
from assetfiles.store.group_commit import GroupCommit
from assetfiles.store.point_reads import PointRead
from assetfiles.store.schema import (
    api_tokens,
    device_messages,
    device_sessions,
    devices,
    organizations,
    products,
)
from assetfiles.store.sql import upsert
from assetfiles.store.threads import in_thread


class SecretInUse(Exception):
    """Another token already has this secret; nothing was written."""


class PrincipalStore:
    def __init__(self, engine: Engine, writes: GroupCommit | None = None) -> None:
        """``writes``: the group commit shared with the other stores that group their writes."""
        self.engine = engine
        self.writes = writes or GroupCommit(engine)

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
        query = select(*_TOKEN_COLUMNS).order_by(api_tokens.c.org_id, api_tokens.c.name)
        if org_id is not None:
            query = query.where(api_tokens.c.org_id == org_id)
        with self.engine.connect() as conn:
            return [_token_record(*row) for row in conn.execute(query)]

    @in_thread
    def get_token(self, org_id: str, name: str) -> TokenRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_TOKEN_COLUMNS).where(api_tokens.c.org_id == org_id, api_tokens.c.name == name)
            ).first()
        return _token_record(*row) if row is not None else None

    async def find_token(self, secret_hash: str) -> tuple[str, TokenRecord] | None:
        """The token whose secret hashes to ``secret_hash``, and its stored hash for a constant-time
        check (every API request asks: a point read, store/point_reads.py)."""
        row = await _TOKEN_BY_HASH.first(self.engine, secret_hash=secret_hash)
        if row is None:
            return None
        stored_hash, *columns = row
        return stored_hash, _token_record(*columns)

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
    def upsert_device(
        self, org_id: str, device: DeviceRef, secret_hash: str | None, sealed_secret: str | None = None
    ) -> bool:
        """Create a device or update its credential (``None`` keeps the current one; a new one drops
        the old one's digest and sealed copy, and the sessions it opened). True if created."""
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
                        sealed_secret=sealed_secret,
                        created_at=now_ms(),
                    )
                )
                return True
            if secret_hash is not None:
                conn.execute(
                    update(devices)
                    .where(where)
                    .values(secret_hash=secret_hash, secret_digest=None, sealed_secret=sealed_secret)
                )
                conn.execute(delete(device_sessions).where(*_session_of(org_id, device)))
            elif sealed_secret is not None:
                conn.execute(update(devices).where(where).values(sealed_secret=sealed_secret))
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

    async def find_devices(self, device: DeviceRef) -> list[DeviceCredential]:
        """The credential of every organization's device of that name (every device request
        asks: a point read, store/point_reads.py)."""
        rows = await _DEVICE_CREDENTIALS.rows(
            self.engine, product_id=device.product_id, device_id=device.device_id
        )
        return [DeviceCredential(*row) for row in rows]

    @in_thread
    def set_device_activation(
        self, org_id: str, device: DeviceRef, state: str | None, *, only_from: str | None = None
    ) -> bool:
        """Set a device's Murano activation state; with ``only_from``, only if it is in that state
        now (an activation takes an enabled device once, however many ask at the same moment)."""
        conditions = [
            devices.c.org_id == org_id,
            devices.c.product_id == device.product_id,
            devices.c.id == device.device_id,
        ]
        if only_from is not None:
            conditions.append(devices.c.activation == only_from)
        with self.engine.begin() as conn:
            updated: int = conn.execute(update(devices).where(*conditions).values(activation=state)).rowcount
            return updated == 1

    @in_thread
    def remember_device_digest(self, org_id: str, device: DeviceRef, secret_hash: str, digest: str) -> None:
        """Keep the fast check's digest of a secret that just passed the scrypt check, unless the
        credential was replaced meanwhile (the row must still hold the hash that was checked)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(devices)
                .where(
                    devices.c.org_id == org_id,
                    devices.c.product_id == device.product_id,
                    devices.c.id == device.device_id,
                    devices.c.secret_hash == secret_hash,
                )
                .values(secret_digest=digest)
            )

    # -- device sessions ---------------------------------------------------------------------

    @in_thread
    def open_device_session(self, digest: str, session: DeviceSession, keep: int) -> None:
        """Store a new session; the device's expired ones, and all but its ``keep`` newest, go."""
        with self.engine.begin() as conn:
            of_device = _session_of(session.org_id, session.device)
            conn.execute(
                delete(device_sessions).where(*of_device, device_sessions.c.expires_at <= session.created_at)
            )
            conn.execute(
                insert(device_sessions).values(
                    digest=digest,
                    org_id=session.org_id,
                    product_id=session.device.product_id,
                    device_id=session.device.device_id,
                    protocol=session.protocol,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )
            newest = (
                select(device_sessions.c.digest)
                .where(*of_device)
                .order_by(device_sessions.c.created_at.desc(), device_sessions.c.digest)
                .limit(keep)
            )
            kept = set(conn.scalars(newest))
            conn.execute(delete(device_sessions).where(*of_device, device_sessions.c.digest.not_in(kept)))

    async def find_device_session(self, digest: str) -> DeviceSession | None:
        """Every request of a device's session asks: a point read (store/point_reads.py)."""
        row = await _DEVICE_SESSION.first(self.engine, digest=digest)
        return _device_session(*row) if row is not None else None

    async def remember_device_message(
        self, session_digest: str, message_id: str, fingerprint: str, answer: str, now: int
    ) -> None:
        """Keep a message's answer for its session; a message already remembered keeps the first.
        Group-committed with the upload it answers for (store/group_commit.py)."""
        await self.writes.submit(_remember_messages, (session_digest, message_id, fingerprint, answer, now))

    async def find_device_message(self, session_digest: str, message_id: str) -> tuple[str, str] | None:
        """(fingerprint, answer) of a message this session posted before (a point read)."""
        row = await _DEVICE_MESSAGE.first(self.engine, session_digest=session_digest, message_id=message_id)
        return (row[0], row[1]) if row is not None else None

    @in_thread
    def list_device_sessions(self, org_id: str | None, now: int) -> list[DeviceSession]:
        """Sessions not yet expired, oldest first (per organization, or all)."""
        query = select(*_SESSION_COLUMNS).where(device_sessions.c.expires_at > now)
        if org_id is not None:
            query = query.where(device_sessions.c.org_id == org_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(device_sessions.c.created_at)).all()
        return [_device_session(*row) for row in rows]

    @in_thread
    def revoke_device_sessions(self, org_id: str, device: DeviceRef, protocol: str | None = None) -> int:
        """End every session of a device (of one protocol, or all); how many there were."""
        conditions = list(_session_of(org_id, device))
        if protocol is not None:
            conditions.append(device_sessions.c.protocol == protocol)
        with self.engine.begin() as conn:
            revoked: int = conn.execute(delete(device_sessions).where(*conditions)).rowcount
            return revoked

    # -- assets ------------------------------------------------------------------------------


#: a token's columns, in the order :func:`_token_record` takes them
_TOKEN_COLUMNS = (
    api_tokens.c.org_id,
    api_tokens.c.name,
    api_tokens.c.permissions,
    api_tokens.c.created_at,
    api_tokens.c.expires_at,
    api_tokens.c.revoked_at,
    api_tokens.c.last_used_at,
)


def _token_record(
    org_id: str,
    name: str,
    permissions: str,
    created_at: int,
    expires_at: int | None,
    revoked_at: int | None,
    last_used_at: int | None,
) -> TokenRecord:
    granted = frozenset(Permission(p) for p in permissions.split(",") if p)
    return TokenRecord(org_id, name, granted, created_at, expires_at, revoked_at, last_used_at)


def _session_of(org_id: str, device: DeviceRef) -> tuple[Any, ...]:
    return (
        device_sessions.c.org_id == org_id,
        device_sessions.c.product_id == device.product_id,
        device_sessions.c.device_id == device.device_id,
    )


#: a session's columns, in the order :func:`_device_session` takes them
_SESSION_COLUMNS = (
    device_sessions.c.org_id,
    device_sessions.c.product_id,
    device_sessions.c.device_id,
    device_sessions.c.protocol,
    device_sessions.c.created_at,
    device_sessions.c.expires_at,
)


def _device_session(
    org_id: str, product_id: str, device_id: str, protocol: str, created_at: int, expires_at: int
) -> DeviceSession:
    return DeviceSession(org_id, DeviceRef(product_id, device_id), protocol, created_at, expires_at)


#: (session digest, message id, fingerprint, answer, created at)
_RememberedMessage = tuple[str, str, str, str, int]


def _remember_messages(conn: Connection, messages: Sequence[_RememberedMessage]) -> list[None]:
    """The grouped form of :meth:`PrincipalStore.remember_device_message`: one insert that keeps
    the first answer of a message already remembered. A session revoked meanwhile (its messages'
    foreign key) fails the insert: then each message is inserted alone and such ones are skipped."""
    rows = [
        {"session_digest": digest, "message_id": message_id, "fingerprint": fingerprint, "answer": answer,
         "created_at": now}
        for digest, message_id, fingerprint, answer, now in messages
    ]  # fmt: skip
    try:
        with conn.begin_nested():
            conn.execute(upsert(conn, device_messages).on_conflict_do_nothing(), rows)
    except IntegrityError:
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(upsert(conn, device_messages).values(row).on_conflict_do_nothing())
            except IntegrityError:
                pass  # its session was revoked: nothing to answer a re-send with
    return [None] * len(messages)


_DEVICE_CREDENTIALS = PointRead(
    select(
        devices.c.org_id,
        devices.c.secret_hash,
        devices.c.secret_digest,
        devices.c.sealed_secret,
        devices.c.activation,
    ).where(devices.c.product_id == bindparam("product_id"), devices.c.id == bindparam("device_id"))
)
_TOKEN_BY_HASH = PointRead(
    select(api_tokens.c.secret_hash, *_TOKEN_COLUMNS).where(
        api_tokens.c.secret_hash == bindparam("secret_hash")
    )
)
_DEVICE_SESSION = PointRead(select(*_SESSION_COLUMNS).where(device_sessions.c.digest == bindparam("digest")))
_DEVICE_MESSAGE = PointRead(
    select(device_messages.c.fingerprint, device_messages.c.answer).where(
        device_messages.c.session_digest == bindparam("session_digest"),
        device_messages.c.message_id == bindparam("message_id"),
    )
)
