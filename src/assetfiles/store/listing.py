"""The SQL of a content listing: one page of rows and its total, each walking one composite index.

A listing by association (an asset, or the devices feeding it) walks ``content_associations``,
which carries copies of the sort keys; a whole-organization listing walks ``contents``. Filters
become conditions on the walked table, tags an EXISTS each, and a cursor a keyset condition.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, exists, func, or_, select

from assetfiles.model import ContentQuery
from assetfiles.store.schema import association_counts, content_associations, content_tags, contents
from assetfiles.store.sql import glob_to_like


def counted_total(query: ContentQuery) -> Select[Any] | None:
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


def listing_statements(query: ContentQuery) -> tuple[Select[Any], Select[Any]]:
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
        conditions.append(func.lower(base.c.name).like(glob_to_like(query.name_glob).lower(), escape="\\"))
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


def _ordering(column: Any, key: Any, descending: bool) -> tuple[Any, Any]:
    return (column.desc(), key.desc()) if descending else (column.asc(), key.asc())


def _targets(query: ContentQuery) -> tuple[str, list[str]] | None:
    """The association type and target ids a listing walks, or None for a whole-organization listing."""
    if query.devices is not None:
        return "device", sorted({str(device) for device in query.devices})
    if query.association is not None:
        return query.association.type, [query.association.id]
    return None
