"""Bounds on what one GraphQL request may ask, so that a single call cannot exhaust the server.

Every bound applies before the work it protects:

- the body (MAX_REQUEST_BYTES) before it is read, the query text (MAX_QUERY_CHARS) and its
  tokens (MAX_TOKENS) before it is parsed;
- parsing and validation of a document not seen before run on a worker thread, a few at a time
  (the event loop keeps answering others while a pathological document is checked);
- parsed documents are cached by their text only when small, in a cache bounded by the total
  size of the texts it holds (a parsed document takes about 100 times its text in memory);
- depth (MAX_DEPTH) and root fields (MAX_ROOT_FIELDS) during validation;
- cost (MAX_COST) after validation, with the variables: every selected field counts once per
  item of every list it sits in (a page of ``pagination.limit`` items, other lists at
  SMALL_LIST_SIZE), so aliases nested in a 1,000-item page count 1,000 times.

The documented listing at the largest page (1,000) costs 40,001 (a test checks it is
answered); a client resolving 50 URLs with aliases about 200.

Fields are not all the work: a listing narrowed by tags, a name glob, media types or
``modifiedSince`` is checked row by row, and its ``totalCount`` counts every match, so it reads
every content row under its targets, however small its page. Once the organization's size is
known, :func:`scan_cost` adds a point per ROWS_PER_POINT rows such a listing may read (the
contents under its association or devices, or the whole organization's without them; each tag
filter another pass over them; an offset the index entries it skips), so the same query costs
more on a larger asset and the rows one request may make the catalog read are bounded. Each tag
filter also costs TAG_FILTER_POINTS on its own: planning its subquery takes the database time
however few rows there are.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    value_from_ast_untyped,
)

MAX_REQUEST_BYTES = 1024 * 1024
MAX_QUERY_CHARS = 100_000
MAX_TOKENS = 15_000
MAX_ROOT_FIELDS = 200
MAX_DEPTH = 15
MAX_COST = 60_000
#: Lists without a page argument (tags, associations, signals, permissions, media types).
SMALL_LIST_SIZE = 5
PAGE_DEFAULT, PAGE_MAX = 50, 1000
PAGED_FIELDS = frozenset({"assetContents", "assets"})
LIST_FIELDS = frozenset({"tags", "associations", "signals", "permissions", "contentTypes"})
#: Content rows a listing may read per point of cost (see the module docstring).
ROWS_PER_POINT = 50
#: Cost of one tag filter of a listing, whatever the rows: each is a correlated subquery, and
#: PostgreSQL takes 4-8 ms to plan a listing per tag filter it has (a 50-tag listing about 200-400
#: ms on an empty organization; SQLite a tenth of it), so a request holds at most ~300 of them.
TAG_FILTER_POINTS = 200
#: ContentFilters fields checked row by row rather than walked in an index.
ROW_FILTERS = ("tags", "name", "contentTypes", "modifiedSince")
#: Documents are cached only up to this many characters, and all of them up to CACHE_CHARS.
CACHE_ENTRY_CHARS = 8 * 1024
CACHE_CHARS = 512 * 1024


def _selections(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
    cap: int = MAX_COST + 1,
) -> list[tuple[FieldNode, frozenset[str]]]:
    """The fields of a selection set with fragments expanded (each fragment once per path), at
    most ``cap`` of them: fragments spreading others twice over would otherwise expand to
    exponentially many fields."""
    fields: list[tuple[FieldNode, frozenset[str]]] = []

    def expand(selections: SelectionSetNode, path: frozenset[str]) -> None:
        for selection in selections.selections:
            if len(fields) >= cap:
                return
            if isinstance(selection, FieldNode):
                fields.append((selection, path))
            elif isinstance(selection, InlineFragmentNode):
                expand(selection.selection_set, path)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in path:
                    expand(fragment.selection_set, path | {name})

    expand(selection_set, seen)
    return fields


class RootFieldLimit(ValidationRule):
    """Refuse operations that select more than MAX_ROOT_FIELDS root fields, aliases included."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        count = len(_selections(node.selection_set, _fragments(self.context.document), frozenset()))
        if count > MAX_ROOT_FIELDS:
            self.report_error(
                GraphQLError(
                    f"an operation may select at most {MAX_ROOT_FIELDS} root fields (aliases included), "
                    f"this one selects {count}",
                    node,
                )
            )


class DepthLimit(ValidationRule):
    """Refuse operations nested deeper than MAX_DEPTH fields (introspection's cycles included)."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        depth = _depth(node.selection_set, _fragments(self.context.document), frozenset(), 0)
        if depth > MAX_DEPTH:
            self.report_error(
                GraphQLError(
                    f"an operation may nest at most {MAX_DEPTH} fields deep (or expand to at most "
                    f"{MAX_COST} fields); this one goes beyond",
                    node,
                )
            )


def _depth(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
    level: int,
    budget: list[int] | None = None,
) -> int:
    """The deepest field under ``selection_set``; gives up (answering "too deep") after visiting
    MAX_COST fields, which only a document built to explode does."""
    budget = budget if budget is not None else [MAX_COST]
    if level > MAX_DEPTH or budget[0] <= 0:
        return MAX_DEPTH + 1  # deep (or large) enough to refuse: no need to walk further
    deepest = level
    for field, path in _selections(selection_set, fragments, seen):
        budget[0] -= 1
        if budget[0] <= 0:
            return MAX_DEPTH + 1
        if field.selection_set is not None:
            deepest = max(deepest, _depth(field.selection_set, fragments, path, level + 1, budget))
        else:
            deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
    return deepest


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _page_size(field: FieldNode, variables: Mapping[str, Any]) -> int:
    pagination = _argument(field, "pagination", variables)
    limit = pagination.get("limit") if isinstance(pagination, dict) else None
    return max(1, min(PAGE_MAX, limit)) if isinstance(limit, int) else PAGE_DEFAULT


def _operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs (None: unknown, which execution reports)."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None
            or (definition.name is not None and definition.name.value == operation_name)
        ):
            return definition
    return None


def _argument(field: FieldNode, name: str, variables: Mapping[str, Any]) -> Any:
    """An argument's value with the variables in (None when absent)."""
    for argument in field.arguments or ():
        if argument.name.value == name:
            return value_from_ast_untyped(argument.value, dict(variables))
    return None


@dataclass(frozen=True)
class Scan:
    """What one root ``assetContents`` may make the catalog read."""

    #: passes over its targets' rows its filters make (0: it only walks an index)
    passes: int
    #: index entries its offset skips
    offset: int
    #: the association targets it lists, (type, id); None: the whole organization
    targets: tuple[tuple[str, str], ...] | None
    #: its tag filters (each a correlated subquery the database plans, whatever the rows)
    tag_filters: int = 0


def listing_scans(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]
) -> list[Scan]:
    """The scans of the operation's root ``assetContents`` fields (see the module docstring)."""
    operation = _operation(document, operation_name)
    if operation is None:
        return []
    scans = []
    for field, _path in _selections(operation.selection_set, _fragments(document), frozenset()):
        if field.name.value != "assetContents":
            continue
        filters = _argument(field, "filters", variables)
        filters = filters if isinstance(filters, dict) else {}
        tags = filters.get("tags")
        tag_filters = len(tags) if isinstance(tags, list) else 0
        passes = 0
        if any(filters.get(name) not in (None, [], "") for name in ROW_FILTERS):
            passes = 1 + tag_filters
        pagination = _argument(field, "pagination", variables)
        offset = pagination.get("offset") if isinstance(pagination, dict) else None
        offset = offset if isinstance(offset, int) and offset > 0 else 0
        scans.append(
            Scan(passes, offset, _targets(filters, _argument(field, "devices", variables)), tag_filters)
        )
    return scans


def _targets(filters: dict[str, Any], devices: Any) -> tuple[tuple[str, str], ...] | None:
    """The targets a listing reads under, as far as its arguments say (None: it may read the
    whole organization). Devices count whether or not they feed the asset: an upper bound."""
    if isinstance(devices, list):
        return tuple(
            ("device", f"{device.get('product_id')}.{device.get('device_id')}")
            for device in devices
            if isinstance(device, dict)
        )
    association = filters.get("association")
    if isinstance(association, dict) and isinstance(association.get("type"), str):
        return ((association["type"], str(association.get("id"))),)
    return None


def rows_read(scans: Sequence[Scan], rows: Sequence[int]) -> int:
    """The rows ``scans`` may make the catalog read, given how many contents each one's targets hold."""
    return sum(scan.passes * size + min(scan.offset, size) for scan, size in zip(scans, rows, strict=True))


def tag_filter_cost(scans: Sequence[Scan]) -> int:
    """What planning the listings' tag filters costs, whatever the rows (TAG_FILTER_POINTS each)."""
    return TAG_FILTER_POINTS * sum(scan.tag_filters for scan in scans)


def scan_cost(read: int) -> int:
    """The cost of reading that many rows: a point per ROWS_PER_POINT, rounded up."""
    return -(-read // ROWS_PER_POINT)


def query_cost(document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]) -> int:
    """Fields selected, each counted once per item of every list it is inside (see the module)."""
    fragments = _fragments(document)
    operation = _operation(document, operation_name)
    if operation is None:
        return 0  # execution reports the unknown operation

    def cost(selection_set: SelectionSetNode, seen: frozenset[str], times: int, root: bool) -> int:
        total = 0
        for field, path in _selections(selection_set, fragments, seen):
            name = field.name.value
            if name.startswith("__"):
                continue  # introspection: bounded by the schema's size and MAX_DEPTH
            total += times
            if total > MAX_COST:
                return total
            if field.selection_set is not None:
                inner = times
                if root and name in PAGED_FIELDS:  # the root field's page: its items' fields
                    inner *= _page_size(field, variables)
                elif name in LIST_FIELDS:
                    inner *= SMALL_LIST_SIZE
                total += cost(field.selection_set, path, inner, False)
        return total

    return cost(operation.selection_set, frozenset(), 1, True)


class DocumentCache:
    """Parsed, validated documents by query text, least recently used first out, bounded by the
    total characters of the texts held; texts over CACHE_ENTRY_CHARS are never held."""

    def __init__(self, max_chars: int = CACHE_CHARS, max_entry_chars: int = CACHE_ENTRY_CHARS) -> None:
        self.max_chars = max_chars
        self.max_entry_chars = max_entry_chars
        self.chars = 0
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()

    def get(self, query: str) -> DocumentNode | None:
        document = self._documents.get(query)
        if document is not None:
            self._documents.move_to_end(query)
        return document

    def put(self, query: str, document: DocumentNode) -> None:
        if len(query) > self.max_entry_chars or query in self._documents:
            return
        self._documents[query] = document
        self.chars += len(query)
        while self.chars > self.max_chars:
            evicted, _ = self._documents.popitem(last=False)
            self.chars -= len(evicted)

    def __len__(self) -> int:
        return len(self._documents)
