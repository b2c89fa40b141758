"""Pagination shared by every listing: offset bounds, and keyset cursors.

A cursor (an addition next to ``offset``) names the last row of a page by its sort value and
primary key, so the next page is an index range that starts there: a deep page costs what the
first one does, and rows added or removed meanwhile neither repeat nor vanish from the walk. It
is opaque to clients (base64url of JSON) and carries the ordering it was made for; it grants
nothing, since every listing query is scoped to the caller's organization anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from assetfiles.errors import BadInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def check_pagination(limit: int | None, offset: int | None) -> tuple[int, int]:
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"limit: must be between 1 and {MAX_LIMIT}, got {limit}", field="limit")
    if offset < 0:
        raise BadInput(f"offset: must not be negative, got {offset}", field="offset")
    return limit, offset


#: Longest cursor accepted: ours are well under 200 characters even for 255-byte names.
MAX_CURSOR = 2048
CURSOR_FIELD = "cursor"
#: The contents' primary key is a 32-bit integer on every engine.
MAX_KEY = 2**31 - 1


def encode_cursor(order_by: str, descending: bool, value: int | str, pk: int) -> str:
    document = json.dumps([order_by, descending, value, pk], separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order_by: str, descending: bool) -> tuple[int | str, int]:
    """The (sort value, primary key) a cursor resumes after; BadInput when it is not one of ours."""
    if len(cursor) > MAX_CURSOR:
        raise BadInput(f"{CURSOR_FIELD}: not a cursor this server issued (too long)", field=CURSOR_FIELD)
    try:
        document: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise BadInput(f"{CURSOR_FIELD}: not a cursor this server issued", field=CURSOR_FIELD) from None
    if not (
        isinstance(document, list)
        and len(document) == 4
        and isinstance(document[2], int | str)
        and not isinstance(document[2], bool)
        and isinstance(document[3], int)
        and not isinstance(document[3], bool)
    ):
        raise BadInput(f"{CURSOR_FIELD}: not a cursor this server issued", field=CURSOR_FIELD)
    if document[0] != order_by or document[1] is not descending:
        raise BadInput(
            f"{CURSOR_FIELD}: the cursor was made for another orderBy or sort; keep the filters of "
            "the first page",
            field=CURSOR_FIELD,
        )
    expected = str if order_by == "name" else int
    value, pk = document[2], document[3]
    # within the columns' ranges (a 32-bit key, 64-bit times and lengths): a forged value outside
    # them would reach the database as an overflow instead of an answer
    if (
        not isinstance(value, expected)
        or not 0 <= pk <= MAX_KEY
        or (isinstance(value, int) and not -(2**63) <= value < 2**63)
    ):
        raise BadInput(f"{CURSOR_FIELD}: not a cursor this server issued", field=CURSOR_FIELD)
    return value, pk
