"""A small GraphQL-over-HTTP client on aiohttp, for the ExoSense API of assetfiles or the real one."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from assetfiles.client.retry import RetryPolicy, retry_after_seconds

#: Statuses worth another try: the server is busy or briefly down (the client only sends queries,
#: which are safe to repeat; a mutation caller should not rely on these retries).
RETRY_STATUSES = {429, 500, 502, 503, 504}


class GraphQLClientError(Exception):
    """The server answered with an error; ``status`` is its HTTP status. ``graphql`` is False when
    the answer was no GraphQL response at all (not JSON, or no ``data`` nor ``errors``): the URL
    does not lead to a GraphQL API."""

    def __init__(self, message: str, *, status: int, code: str | None = None, graphql: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.graphql = graphql


class GraphQLClient:
    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, token: str, *, retry: RetryPolicy | None = None
    ) -> None:
        self.session = session
        self.endpoint = base_url.rstrip("/") + "/api/graphql"
        self.headers = {"Authorization": f"Automation {token}"}
        self.retry = retry or RetryPolicy()
        self.reached = False  # a server that never answered is unreachable, not busy: no retries

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one operation; raise GraphQLClientError on any error, return ``data`` otherwise."""
        data, errors = await self.execute_partial(query, variables)
        if errors:
            first = errors[0]
            code = (first.get("extensions") or {}).get("code")
            raise GraphQLClientError(first.get("message", "unknown error"), status=200, code=code)
        return data

    async def execute_partial(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run one operation whose fields may fail one by one (a batch of aliases).

        Returns ``data`` and the field errors (each with its ``path``). A request that failed as a
        whole (401, 400, not JSON, no data) raises GraphQLClientError.
        """
        payload = {"query": query, "variables": variables or {}}
        failures = 0
        while True:
            try:
                return await self._post(payload)
            except (_Busy, aiohttp.ClientConnectionError, TimeoutError) as exc:
                failures += 1
                if self.retry.gives_up(failures) or not (self.reached or isinstance(exc, _Busy)):
                    if isinstance(exc, _Busy):
                        raise GraphQLClientError(str(exc), status=exc.status) from None
                    raise
                retry_after = exc.retry_after if isinstance(exc, _Busy) else None
                await asyncio.sleep(self.retry.wait(failures, retry_after))

    async def _post(self, payload: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with self.session.post(self.endpoint, json=payload, headers=self.headers) as response:
            self.reached = True
            if response.status in RETRY_STATUSES:
                raise _Busy(response.status, retry_after_seconds(response.headers.get("Retry-After")))
            try:
                body = await response.json(content_type=None)
            except ValueError:
                raise GraphQLClientError(
                    f"HTTP {response.status}: the answer is not JSON", status=response.status, graphql=False
                ) from None
        errors = (body.get("errors") if isinstance(body, dict) else None) or []
        data = body.get("data") if isinstance(body, dict) else None
        if response.status >= 400 or not isinstance(data, dict):
            if errors:
                first = errors[0]
                code = (first.get("extensions") or {}).get("code")
                message = first.get("message", "unknown error")
                raise GraphQLClientError(message, status=response.status, code=code)
            raise GraphQLClientError(f"HTTP {response.status}", status=response.status, graphql=False)
        return data, errors


class _Busy(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: the server is busy")
        self.status = status
        self.retry_after = retry_after
