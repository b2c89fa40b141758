"""The EnOS source: files by ``enos-connect://`` URI through the token service and the files API.

Only what EnOS documents: ``token/get`` with sha256(appKey + timestamp + appSecret), then
``files?action=download`` with the ``apim-accesstoken`` header. ``getFileInfo`` (size, name,
md5) is used when the server has it; otherwise a one-byte ranged download tells the size.
EnOS has no listing of an asset's files, so :class:`EnosSource` lists the URIs it is given.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from assetfiles.client.errors import Failed, Fatal, Gone, first_of
from assetfiles.client.remote import Origin, RemoteFile, Target
from assetfiles.client.source import Listing

TOKEN_PATH = "/apim-token-service/v2.0/token/get"  # noqa: S105 - a path, not a secret
FILES_PATH = "/connect-service/v2.1/files"
TOTAL = re.compile(r"/(\d+)$")


@dataclass(frozen=True)
class EnosOwner:
    """Whose files: an asset (``asset_id``), or a device (``product_key`` and ``device_key``)."""

    asset_id: str | None = None
    product_key: str | None = None
    device_key: str | None = None

    @property
    def label(self) -> str:
        """What the files are filed under in reports: the asset id, or ``<product>.<device>``."""
        return self.asset_id or f"{self.product_key}.{self.device_key}"

    def params(self) -> dict[str, str]:
        if self.asset_id:
            return {"assetId": self.asset_id}
        return {"productKey": self.product_key or "", "deviceKey": self.device_key or ""}


class EnosClient:
    """The EnOS token service and files API over an aiohttp session (the token renewed on request)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, app_key: str, app_secret: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self.app_secret = app_secret
        self._token: str | None = None

    @property
    def current_token(self) -> str | None:
        return self._token

    async def token(self, *, renew: bool = False) -> str:
        """An access token; ``renew`` after the server refused the current one."""
        if self._token is not None and not renew:
            return self._token
        timestamp = int(time.time() * 1000)
        body = {
            "appKey": self.app_key,
            "encryption": hashlib.sha256(f"{self.app_key}{timestamp}{self.app_secret}".encode()).hexdigest(),
            "timestamp": timestamp,
        }
        async with self.session.post(self.base_url + TOKEN_PATH, json=body) as response:
            answer = await _json(response)
        data = answer.get("data") or {}
        if answer.get("status") != 0 or not data.get("accessToken"):
            raise Fatal(f"the token service refused the application: {answer.get('msg')}")
        self._token = str(data["accessToken"])
        return self._token

    def _params(self, action: str, org: str, uri: str, category: str, owner: EnosOwner) -> dict[str, str]:
        return {"action": action, "orgId": org, "fileUri": uri, "category": category, **owner.params()}

    async def describe(self, org: str, uri: str, category: str, owner: EnosOwner) -> RemoteFile:
        """The file's size (and, where the server says, its name) before downloading it."""
        headers = {"apim-accesstoken": await self.token()}
        params = self._params("getFileInfo", org, uri, category, owner)
        async with self.session.get(self.base_url + FILES_PATH, params=params, headers=headers) as response:
            if response.status in (401, 403):
                # a refused token, or an application that may not read this organization (a wrong
                # --org, a missing policy): every file would get the same answer
                raise Fatal(f"{uri}: {(await _json(response)).get('msg')}")
            if response.status == 404:
                raise Gone(f"{uri}: {(await _json(response)).get('msg')}")
            answer = await _json(response) if response.status == 200 else {}
        info = answer.get("data") if isinstance(answer.get("data"), dict) else None
        name = uri.removeprefix("enos-connect://")
        if info and isinstance(info.get("fileSize"), int):
            return RemoteFile(uri, name, Origin.USER, info["fileSize"], str(info.get("createTime", "")))
        return RemoteFile(uri, name, Origin.USER, await self._probe_length(org, uri, category, owner), "")

    async def _probe_length(self, org: str, uri: str, category: str, owner: EnosOwner) -> int:
        headers = {"apim-accesstoken": await self.token(), "Range": "bytes=0-0"}
        params = self._params("download", org, uri, category, owner)
        async with self.session.get(self.base_url + FILES_PATH, params=params, headers=headers) as response:
            if response.status == 206:
                found = TOTAL.search(response.headers.get("Content-Range", ""))
                if found:
                    return int(found.group(1))
            if response.status == 200 and response.content_length is not None:
                return response.content_length
            message = (await _json(response)).get("msg") if response.status >= 400 else "no size given"
            failure = f"{uri}: HTTP {response.status}: {message}"
            raise Gone(failure) if response.status == 404 else Failed(failure)

    async def target(
        self, org: str, uri: str, category: str, owner: EnosOwner, *, renew: bool = False
    ) -> Target:
        """The download request: the files API URL, with the token in a header (renewed on request)."""
        url = URL(self.base_url + FILES_PATH).with_query(self._params("download", org, uri, category, owner))
        return Target(str(url), headers={"apim-accesstoken": await self.token(renew=renew)})


class EnosSource:
    """The named files of one EnOS asset or device, behind the :class:`Source` interface.

    Its one "asset" is the owner's label; a URI the server cannot describe is a listing failure
    (the caller asked for it by name), not an absence.
    """

    def __init__(
        self, client: EnosClient, org: str, owner: EnosOwner, category: str, uris: Sequence[str],
        *, concurrency: int = 8,
    ) -> None:  # fmt: skip
        self.client = client
        self.org = org
        self.owner = owner
        self.category = category
        self.uris = list(dict.fromkeys(uris))
        self.slots = asyncio.Semaphore(concurrency)
        self._tokens_given: dict[str, str] = {}

    async def connect(self) -> None:
        try:
            await self.client.token()
        except aiohttp.ClientConnectionError as exc:
            raise Fatal(f"cannot reach the server: {exc}") from None

    async def asset_ids(self) -> list[str]:
        return [self.owner.label]

    async def list_files(
        self,
        asset_id: str,
        content_types: Sequence[str] = (),
        name_glob: str | None = None,
        *,
        tags: bool = True,
    ) -> Listing:
        listing = Listing([])

        async def describe(uri: str) -> None:
            async with self.slots:
                try:
                    listing.files.append(await self.client.describe(self.org, uri, self.category, self.owner))
                except Gone as exc:
                    listing.failures[uri] = Failed(f"not found: {exc}")
                except Failed as exc:
                    listing.failures[uri] = exc

        try:
            async with asyncio.TaskGroup() as group:
                for uri in self.uris:
                    group.create_task(describe(uri))
        except ExceptionGroup as failed:  # a refusal that ends the run ends it as itself
            fatal = first_of(failed, Fatal)
            if fatal is None:
                raise
            raise fatal from None
        order = {uri: index for index, uri in enumerate(self.uris)}
        listing.files.sort(key=lambda remote: order[remote.id])
        return listing

    async def resolve(self, files: Sequence[RemoteFile]) -> dict[str, Target | Failed]:
        """The download request of each file; a second call for a file renews a token it had."""
        results: dict[str, Target | Failed] = {}
        for remote in files:
            renew = self._tokens_given.get(remote.id) == self.client.current_token
            target = await self.client.target(self.org, remote.id, self.category, self.owner, renew=renew)
            self._tokens_given[remote.id] = target.headers["apim-accesstoken"]
            results[remote.id] = target
        return results


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
