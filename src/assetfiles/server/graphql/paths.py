"""Where the rules' field names sit among the ExoSense schema's arguments.

A rule names the field at fault in the domain's words (``orderBy``, ``limit``,
``associations[0].type``); a GraphQL caller is told the argument path it sent
(``filters.orderBy``, ``pagination.limit``, ``input.associations[0].type``). Which path depends
on the root field that was asked (``name`` is ``filters.name`` in a listing and ``input.name``
in an upload), so the map is by root field name, and the first segment of the field decides.
"""

from __future__ import annotations

import re

_FILTERS = ("association", "orderBy", "sort", "contentTypes", "tags", "name", "modifiedSince")
_PAGINATION = ("limit", "offset", "cursor")
_CONTENT_INPUT = ("name", "contentType", "type", "tags", "associations", "length", "sha256")

#: root field name -> {the first segment of a domain field name: the argument it sits under}
ARGUMENT_PREFIXES: dict[str, dict[str, str]] = {
    "assetContents": {**dict.fromkeys(_FILTERS, "filters."), **dict.fromkeys(_PAGINATION, "pagination.")},
    "assets": {"text": "filters.", **dict.fromkeys(_PAGINATION, "pagination.")},
    "assetsCount": {"text": "filters."},
    "deviceAssetContent": dict.fromkeys(("id", "product_id", "device_id"), "input."),
    "createContentUpload": dict.fromkeys(_CONTENT_INPUT, "input."),
}

_FIRST_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def argument_path(root_field: str | None, field: str) -> str:
    """``field`` (a domain name) as the argument path of ``root_field``'s arguments."""
    first = _FIRST_SEGMENT.match(field)
    prefix = ARGUMENT_PREFIXES.get(root_field or "", {}).get(first.group() if first else "")
    return field if prefix is None else prefix + field


def in_arguments(root_field: str | None, message: str, field: str) -> tuple[str, str]:
    """The message and field of an error as the caller of ``root_field`` sent its arguments: a
    message that starts with the field's name starts with its path instead."""
    path = argument_path(root_field, field)
    if path != field and message.startswith(field):
        message = path + message[len(field) :]
    return message, path
