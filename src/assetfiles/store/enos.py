"""EnOS applications, access tokens and seen token requests: the token service's state.

Kept in the catalog database, so that any number of server processes share it (a token issued
by one is accepted by the others, and a request replayed to another process is still refused).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from assetfiles.store.schema import enos_access_tokens, enos_applications, enos_token_requests
from assetfiles.store.threads import in_thread


@dataclass(frozen=True)
class Application:
    app_key: str
    org_id: str
    sealed_secret: str
    policies: frozenset[str]


@dataclass(frozen=True)
class IssuedToken:
    app_key: str
    nonce: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class SeenRequest:
    """What a token request obtained: the token's hash, and for a refresh the token it replaced."""

    token_hash: str
    access_token_hash: str | None = None


class EnosStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @in_thread
    def upsert_application(self, application: Application, now: int) -> bool:
        """Create or update; returns True when something changed."""
        values = {
            "org_id": application.org_id,
            "sealed_secret": application.sealed_secret,
            "policies": ",".join(sorted(application.policies)),
        }
        with self.engine.begin() as conn:
            found = conn.execute(
                select(enos_applications.c.org_id, enos_applications.c.policies).where(
                    enos_applications.c.app_key == application.app_key
                )
            ).first()
            if found is None:
                conn.execute(
                    insert(enos_applications).values(app_key=application.app_key, created_at=now, **values)
                )
                return True
            conn.execute(
                update(enos_applications)
                .where(enos_applications.c.app_key == application.app_key)
                .values(**values)
            )
            return bool(found.org_id != values["org_id"] or found.policies != values["policies"])

    @in_thread
    def get_application(self, app_key: str) -> Application | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(enos_applications).where(enos_applications.c.app_key == app_key)
            ).first()
        if row is None:
            return None
        return Application(
            row.app_key, row.org_id, row.sealed_secret, frozenset(filter(None, row.policies.split(",")))
        )

    @in_thread
    def seen_request(self, operation: str, encryption: str, now: int) -> SeenRequest | None:
        """A token request signed with this ``encryption`` before, while it is inside its window."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(enos_token_requests.c.token_hash, enos_token_requests.c.access_token_hash).where(
                    enos_token_requests.c.operation == operation,
                    enos_token_requests.c.encryption == encryption,
                    enos_token_requests.c.expires_at >= now,
                )
            ).first()
        return None if row is None else SeenRequest(row.token_hash, row.access_token_hash)

    @in_thread
    def record_request(
        self, operation: str, encryption: str, seen: SeenRequest, expires_at: int, now: int
    ) -> bool:
        """Remember which token a request obtained; False when another process recorded it first."""
        with self.engine.begin() as conn:
            conn.execute(delete(enos_token_requests).where(enos_token_requests.c.expires_at < now))
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(enos_token_requests).values(
                            operation=operation,
                            encryption=encryption,
                            token_hash=seen.token_hash,
                            access_token_hash=seen.access_token_hash,
                            expires_at=expires_at,
                        )
                    )
            except IntegrityError:
                return False
        return True

    @in_thread
    def valid_token(self, app_key: str, now: int) -> IssuedToken | None:
        """The application's token that is still valid the longest, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(enos_access_tokens)
                .where(enos_access_tokens.c.app_key == app_key, enos_access_tokens.c.expires_at > now)
                .order_by(enos_access_tokens.c.expires_at.desc())
                .limit(1)
            ).first()
        return None if row is None else IssuedToken(row.app_key, row.nonce, row.issued_at, row.expires_at)

    @in_thread
    def insert_token(
        self, token_hash: str, token: IssuedToken, replaces: str | None = None, retire_at: int = 0
    ) -> bool:
        """Store a new token; with ``replaces``, that token of the same application now expires
        no later than ``retire_at``, atomically (False: it is not this application's)."""
        with self.engine.begin() as conn:
            if replaces is not None:
                old = enos_access_tokens.c
                mine = conn.execute(
                    select(old.expires_at).where(old.token_hash == replaces, old.app_key == token.app_key)
                ).first()
                if mine is None:
                    return False
                if mine.expires_at > retire_at:
                    conn.execute(
                        update(enos_access_tokens)
                        .where(old.token_hash == replaces)
                        .values(expires_at=retire_at)
                    )
            conn.execute(
                delete(enos_access_tokens).where(
                    enos_access_tokens.c.expires_at < token.issued_at - 86_400_000
                )
            )
            conn.execute(
                insert(enos_access_tokens).values(
                    token_hash=token_hash,
                    app_key=token.app_key,
                    nonce=token.nonce,
                    issued_at=token.issued_at,
                    expires_at=token.expires_at,
                )
            )
        return True

    @in_thread
    def find_token(self, token_hash: str) -> tuple[IssuedToken, Application] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(enos_access_tokens, enos_applications.c.org_id, enos_applications.c.sealed_secret,
                       enos_applications.c.policies)
                .join(enos_applications, enos_applications.c.app_key == enos_access_tokens.c.app_key)
                .where(enos_access_tokens.c.token_hash == token_hash)
            ).first()  # fmt: skip
        if row is None:
            return None
        token = IssuedToken(row.app_key, row.nonce, row.issued_at, row.expires_at)
        policies = frozenset(filter(None, row.policies.split(",")))
        return token, Application(row.app_key, row.org_id, row.sealed_secret, policies)
