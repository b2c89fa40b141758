"""Custom scalars: Long (64-bit sizes as JSON numbers), DateTime (ISO 8601) and JSON."""

from __future__ import annotations

from typing import Any

from ariadne import ScalarType
from graphql import IntValueNode, StringValueNode, ValueNode

from assetfiles.errors import BadInput
from assetfiles.model import iso_to_ms, ms_to_iso

LONG_MAX = 2**63 - 1

long_scalar = ScalarType("Long")
datetime_scalar = ScalarType("DateTime")
json_scalar = ScalarType("JSON")


@long_scalar.serializer
def serialize_long(value: Any) -> int:
    return int(value)


@long_scalar.value_parser
def parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Long must be an integer, got {value!r}")
    if not -LONG_MAX <= value <= LONG_MAX:
        raise ValueError("Long is out of the 64-bit range")
    return value


@long_scalar.literal_parser
def parse_long_literal(node: ValueNode, _variables: Any = None) -> int:
    if not isinstance(node, IntValueNode):
        raise ValueError("Long must be an integer literal")
    value: int = parse_long(int(node.value))
    return value


@datetime_scalar.serializer
def serialize_datetime(value: Any) -> str:
    return ms_to_iso(value) if isinstance(value, int) else str(value)


@datetime_scalar.value_parser
def parse_datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"DateTime must be an ISO 8601 string, got {value!r}")
    try:
        iso_to_ms(value, field="DateTime")
    except BadInput as exc:
        raise ValueError(exc.message.split(": ", 1)[-1]) from None
    return value


@datetime_scalar.literal_parser
def parse_datetime_literal(node: ValueNode, _variables: Any = None) -> str:
    if not isinstance(node, StringValueNode):
        raise ValueError("DateTime must be a string literal")
    value: str = parse_datetime(node.value)
    return value


SCALARS = [long_scalar, datetime_scalar, json_scalar]
