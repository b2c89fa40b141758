"""``POST /api/graphql``: authentication, GraphQL-over-HTTP framing and error rendering.

Statuses: 401 for a missing or bad token (nothing is executed); 400 when the request itself is
malformed (bad JSON, syntax, validation or variable coercion errors); 200 otherwise, with
execution errors in ``errors[]`` carrying ``extensions.code``.
"""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from inspect import isawaitable
from typing import Any

import anyio
from ariadne import make_executable_schema
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    execute,
    parse,
    specified_rules,
    validate,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from assetfiles.errors import AssetfilesError, PayloadTooLarge, classify
from assetfiles.server.auth import bearer_secret, public_base_url
from assetfiles.server.bodies import read_body
from assetfiles.server.faces import INTERNAL_MESSAGE, Face, http_status, remember_principal, signing_in
from assetfiles.server.graphql.limits import (
    MAX_COST,
    MAX_QUERY_CHARS,
    MAX_REQUEST_BYTES,
    MAX_TOKENS,
    ROWS_PER_POINT,
    TAG_FILTER_POINTS,
    DepthLimit,
    DocumentCache,
    RootFieldLimit,
    listing_scans,
    query_cost,
    rows_read,
    scan_cost,
    tag_filter_cost,
)
from assetfiles.server.graphql.paths import in_arguments
from assetfiles.server.graphql.resolvers import BINDABLES, ResolverState
from assetfiles.server.graphql.scalars import SCALARS
from assetfiles.service.composition import Services

log = logging.getLogger(__name__)


def build_schema() -> GraphQLSchema:
    type_defs = files("assetfiles.server.graphql").joinpath("schema.graphql").read_text()
    schema: GraphQLSchema = make_executable_schema(type_defs, *SCALARS, *BINDABLES)
    return schema


SCHEMA = build_schema()
RULES = (*specified_rules, RootFieldLimit, DepthLimit)


class _RequestError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def _operation_type(document: DocumentNode, name: str | None) -> str:
    """``query`` or ``mutation``: a bounded label for metrics (operation names are the client's)."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            name is None or definition.name is None or definition.name.value == name
        ):
            return definition.operation.value
    return "-"


_DOCUMENTS = DocumentCache()
#: Parsing and validating new documents: at most this many at once, each on a worker thread.
_CHECKING = anyio.CapacityLimiter(2)


def _parse_and_validate(query: str) -> DocumentNode:
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        raise _RequestError([_format(exc)]) from None
    problems = validate(SCHEMA, document, rules=RULES)
    if problems:
        raise _RequestError([_format(error) for error in problems])
    return document


async def _document(query: str) -> DocumentNode:
    """The parsed, validated document: from the cache (clients repeat the same few queries), or
    checked on a worker thread so that a pathological document never holds the event loop."""
    if len(query) > MAX_QUERY_CHARS:
        raise _RequestError(
            [
                {
                    "message": f"query: at most {MAX_QUERY_CHARS} characters, this one has {len(query)}",
                    "extensions": {"code": "BAD_USER_INPUT", "field": "query"},
                }
            ]
        )
    document = _DOCUMENTS.get(query)
    if document is None:
        document = await anyio.to_thread.run_sync(_parse_and_validate, query, limiter=_CHECKING)
        _DOCUMENTS.put(query, document)
    return document


def _format(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    original = classify(error.original_error) if error.original_error is not None else None
    if original is not None:
        formatted["message"] = original.message
        formatted["extensions"] = {"code": original.code}
        if original.field:
            node = error.nodes[0] if error.nodes and len(error.path or ()) == 1 else None
            root_field = node.name.value if isinstance(node, FieldNode) else None
            message, path = in_arguments(root_field, original.message, original.field)
            formatted["message"] = message
            formatted["extensions"]["field"] = path
    elif error.original_error is not None and error.path:
        log.error("resolver failed", exc_info=error.original_error)
        formatted["message"] = "internal error"
        formatted["extensions"] = {"code": "INTERNAL"}
    else:
        formatted["extensions"] = {"code": "BAD_USER_INPUT"}
    return formatted


def _errors(status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status, headers=headers)


def _request_error(message: str) -> JSONResponse:
    return _errors(400, [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}])


def _face_error(request: Request, error: AssetfilesError, request_id: str) -> Response:
    """A failure before execution (credential, body): GraphQL's error list with the HTTP status."""
    extensions: dict[str, Any] = {"code": error.code}
    if error.field:
        extensions["field"] = error.field
    headers = None
    status = http_status(error)
    if status == 401:
        headers = {"WWW-Authenticate": 'Automation realm="assetfiles", Bearer realm="assetfiles"'}
    return _errors(status, [{"message": error.message, "extensions": extensions}], headers)


def _face_unexpected(request_id: str) -> Response:
    extensions = {"code": "INTERNAL", "requestId": request_id}
    return _errors(500, [{"message": INTERNAL_MESSAGE, "extensions": extensions}])


GRAPHQL = Face("graphql", _face_error, _face_unexpected)


@GRAPHQL
async def graphql_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    async with signing_in(request, request.headers.get("authorization")):
        principal = await services.access.token_principal(bearer_secret(request, ("automation", "bearer")))
    await remember_principal(request, principal)
    raw = await read_body(request, MAX_REQUEST_BYTES)
    if raw is None:
        raise PayloadTooLarge(f"the request body exceeds {MAX_REQUEST_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _request_error("the request body must be a JSON object")
    except RecursionError:
        return _request_error("the request body is nested too deeply")
    if not isinstance(body, dict):
        return _request_error("the request body must be a JSON object")
    query, variables, operation = body.get("query"), body.get("variables"), body.get("operationName")
    if not isinstance(query, str) or not query.strip():
        return _request_error("query: must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        return _request_error("variables: must be a JSON object or null")
    if operation is not None and not isinstance(operation, str):
        return _request_error("operationName: must be a string or null")
    try:
        document = await _document(query)
    except _RequestError as exc:
        return _errors(400, exc.errors)
    scans = listing_scans(document, operation, variables or {})
    cost = query_cost(document, operation, variables or {}) + tag_filter_cost(scans)
    if cost > MAX_COST:
        return _request_error(
            f"this operation costs more than {MAX_COST} (each field counts once per item of the lists "
            f"it is in, a page counting its pagination.limit, and each tag filter of a listing "
            f"{TAG_FILTER_POINTS}); ask for fewer fields, smaller pages or fewer tag filters"
        )
    if any(scan.passes or scan.offset for scan in scans):
        read = rows_read(
            scans, await services.contents.rows_under(principal, [scan.targets for scan in scans])
        )
        if cost + scan_cost(read) > MAX_COST:
            return _request_error(
                f"this operation costs more than {MAX_COST}: it would make the catalog read up to {read} "
                f"rows (a point per {ROWS_PER_POINT}). A listing filtered by tags, name, contentTypes or "
                "modifiedSince reads every content of what it lists once, and once more per tag "
                "filter; an offset reads the entries it skips. Send fewer such listings in one "
                "request, or page by pagination.cursor"
            )
    request.state.operation = _operation_type(document, operation)
    context = ResolverState(services, principal, public_base_url(request, services.settings))
    result = execute(
        SCHEMA, document, variable_values=variables, operation_name=operation, context_value=context
    )
    if isawaitable(result):
        result = await result
    payload: dict[str, Any] = {}
    if result.errors:
        payload["errors"] = [_format(error) for error in result.errors]
    if result.data is None and result.errors and all(not error.path for error in result.errors):
        return JSONResponse(payload, status_code=400)  # variables or operation rejected before execution
    payload["data"] = result.data
    return JSONResponse(payload)
