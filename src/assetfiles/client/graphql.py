"""A small GraphQL-over-HTTP client on aiohttp, for the ExoSense API of assetfiles or the real one."""

from __future__ import annotations

from typing import Any

import aiohttp


class GraphQLClientError(Exception):
    """The server answered with an error; ``status`` is its HTTP status."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class GraphQLClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.endpoint = base_url.rstrip("/") + "/api/graphql"
        self.headers = {"Authorization": f"Automation {token}"}

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one operation; raise GraphQLClientError on any error, return ``data`` otherwise."""
        payload = {"query": query, "variables": variables or {}}
        async with self.session.post(self.endpoint, json=payload, headers=self.headers) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                raise GraphQLClientError(
                    f"HTTP {response.status}: the answer is not JSON", status=response.status
                ) from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            first = errors[0]
            code = (first.get("extensions") or {}).get("code")
            raise GraphQLClientError(first.get("message", "unknown error"), status=response.status, code=code)
        if response.status >= 400 or not isinstance(body, dict):
            raise GraphQLClientError(f"HTTP {response.status}", status=response.status)
        data: dict[str, Any] = body.get("data") or {}
        return data
