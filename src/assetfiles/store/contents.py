"""Contents: their rows, tags and association rows, the kept per-target counts, the change log
entries their writes make, and the usage they charge (all in the writing transaction).

The store of the contents aggregate; see :mod:`assetfiles.store.sql`. A download costs one call
(:meth:`ContentStore.get_stored_file`); a listing page three statements in one call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.elements import BindParameter

from assetfiles.model import (
    Association,
    Content,
    ContentQuery,
    Creator,
    CreatorKind,
    DeviceRef,
    EnosFacet,
    Page,
    StoredFile,
    now_ms,
)
from assetfiles.store import changes
from assetfiles.store.group_commit import GroupCommit
from assetfiles.store.listing import counted_total, listing_statements
from assetfiles.store.point_reads import PointRead, SqlitePointReads
from assetfiles.store.quotas import charge
from assetfiles.store.schema import association_counts, content_associations, content_tags, contents
from assetfiles.store.sql import upsert
from assetfiles.store.threads import in_thread


class _AlreadyGone(Exception):
    """Raised inside a transaction to roll it back: a concurrent delete removed the row first."""


class ContentStore:
    def __init__(self, engine: Engine, writes: GroupCommit | None = None) -> None:
        """``writes``: the group commit shared with the other stores that group their writes."""
        self.engine = engine
        self.writes = writes or GroupCommit(engine)
        self._point_reads = SqlitePointReads.of(engine)

    async def insert_contents(self, batch: Sequence[Content], max_total_bytes: int | None = None) -> None:
        """Insert many contents in one transaction: all of them or, on any error, none.

        With ``max_total_bytes``, only if their organization stays within it: checked and charged
        in the same transaction, so concurrent uploads cannot overshoot it together. Concurrent
        calls are grouped into one transaction (store/group_commit.py).
        """
        if batch:
            await self.writes.submit(_insert_grouped, (tuple(batch), max_total_bytes))

    @in_thread
    def set_tags(self, org_id: str, content_id: str, tags: dict[str, str], updated_at: int) -> bool:
        with self.engine.begin() as conn:
            pk = _content_pk(conn, org_id, content_id)
            if pk is None:
                return False
            _write_tags(conn, pk, tags)
            _touch(conn, pk, updated_at=updated_at)
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
            charge(conn, org_id, length - row.length, 0, None)
            _touch(
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
                pk = _content_pk(conn, org_id, content_id)
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
                charge(conn, org_id, -row.length, -1, None)
                removed: Counter[tuple[str, str, str]] = Counter()
                for link in links:
                    removed[(link.org_id, link.type, link.target_id)] -= 1
                _bump_counts(conn, removed)
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
    def blob_digests(self) -> list[str]:
        """Every digest some content names, sorted (what a backup of the catalog must copy)."""
        with self.engine.connect() as conn:
            return sorted({row.sha256 for row in conn.execute(select(contents.c.sha256).distinct())})

    @in_thread
    def contents_of_blobs(self, sha256s: Sequence[str]) -> list[tuple[str, str]]:
        """(org_id, content id) of every content naming one of these digests."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(contents.c.org_id, contents.c.id).where(contents.c.sha256.in_(list(sha256s)))
            )
            return [(row.org_id, row.id) for row in rows]

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
            return {content.id: content for content in _with_extras(conn, conn.execute(statement).all())}

    @in_thread
    def get_content_by_enos_uri(self, org_id: str, file_uri: str) -> Content | None:
        return self._first_content(
            select(contents).where(contents.c.org_id == org_id, contents.c.enos_file_uri == file_uri)
        )

    def _first_content(self, statement: Select[Any]) -> Content | None:
        with self.engine.connect() as conn:
            found = _with_extras(conn, conn.execute(statement).all())
            return found[0] if found else None

    async def get_stored_file(self, org_id: str, content_id: str) -> StoredFile | None:
        """The hot path of every download: one row, no tags or associations. From a SQLite file
        it is read on the calling thread (store/point_reads.py), else in the worker threads."""
        row = await _STORED_FILE.first(self.engine, org_id=org_id, content_id=content_id)
        if row is None:
            return None
        name, content_type, length, sha256, updated_at = row
        return StoredFile(content_id, org_id, name, content_type, length, sha256, updated_at)

    def close(self) -> None:
        """Stop the group commit's thread and close the point-read connections (the engine's own
        are disposed with it)."""
        self.writes.close()
        if self._point_reads is not None:
            self._point_reads.close()

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
        page, count = listing_statements(query)
        counted = counted_total(query)
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
            return Page(_with_extras(conn, rows), total, last_key)

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


def _insert_grouped(conn: Connection, requests: Sequence[tuple[Sequence[Content], int | None]]) -> list[None]:
    """The grouped form of :func:`insert_contents`: the batches that share a quota limit become
    one batch, so a group of uploads costs the statements of one."""
    by_limit: dict[int | None, list[Content]] = {}
    for batch, max_total_bytes in requests:
        by_limit.setdefault(max_total_bytes, []).extend(batch)
    for max_total_bytes, merged in by_limit.items():
        insert_contents(conn, merged, max_total_bytes)
    return [None] * len(requests)


def insert_contents(conn: Connection, batch: Sequence[Content], max_total_bytes: int | None = None) -> None:
    """Insert contents within ``conn``'s transaction (see :meth:`ContentStore.insert_contents`)."""
    if not batch:
        return
    usage: dict[str, list[int]] = {}
    for content in batch:
        charged = usage.setdefault(content.org_id, [0, 0])
        charged[0] += content.length
        charged[1] += 1
    for org_id, (size, count) in sorted(usage.items()):  # one lock order for every transaction
        charge(conn, org_id, size, count, max_total_bytes)
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
        _bump_counts(conn, added)


def _bump_counts(conn: Connection, deltas: Counter[tuple[str, str, str]]) -> None:
    """Add ``deltas`` to the per-target content counts (an upsert on both SQLite and PostgreSQL)."""
    for (org_id, kind, target_id), delta in deltas.items():
        if delta == 0:
            continue
        statement = upsert(conn, association_counts).values(
            org_id=org_id, type=kind, target_id=target_id, contents=delta
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["org_id", "type", "target_id"],
                set_={"contents": association_counts.c.contents + delta},
            )
        )


def _write_tags(conn: Connection, pk: int, tags: dict[str, str]) -> None:
    conn.execute(delete(content_tags).where(content_tags.c.content_pk == pk))
    if tags:
        conn.execute(
            insert(content_tags), [{"content_pk": pk, "name": n, "value": v} for n, v in tags.items()]
        )


def _touch(conn: Connection, pk: int, **values: Any) -> None:
    """Update a content row and the sort keys copied into its association rows."""
    conn.execute(update(contents).where(contents.c.pk == pk).values(**values))
    copied = {key: value for key, value in values.items() if key in content_associations.c}
    if copied:
        conn.execute(
            update(content_associations).where(content_associations.c.content_pk == pk).values(**copied)
        )


def _content_pk(conn: Connection, org_id: str, content_id: str) -> int | None:
    return conn.scalar(select(contents.c.pk).where(contents.c.org_id == org_id, contents.c.id == content_id))


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
_STORED_FILE = PointRead(
    select(
        contents.c.name, contents.c.content_type, contents.c.length, contents.c.sha256, contents.c.updated_at
    ).where(contents.c.org_id == bindparam("org_id"), contents.c.id == bindparam("content_id"))
)


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
        "via": content.via,
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
        via=row.via,
    )
