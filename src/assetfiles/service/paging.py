"""Pagination bounds shared by every listing."""

from __future__ import annotations

from assetfiles.errors import BadInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def check_pagination(limit: int | None, offset: int | None) -> tuple[int, int]:
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(
            f"pagination.limit: must be between 1 and {MAX_LIMIT}, got {limit}", field="pagination.limit"
        )
    if offset < 0:
        raise BadInput(f"pagination.offset: must not be negative, got {offset}", field="pagination.offset")
    return limit, offset
