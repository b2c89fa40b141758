"""The ASGI app in this process, reached through ``httpx.ASGITransport``: the app tier's server.

It has the interface of :class:`tests.helpers.Server` (``gql``, ``data``, ``error``, ``get``...),
so a test reads the same in either tier. The app and its lifespan run on an event loop of their
own (an anyio blocking portal in a thread), as they would under granian; the tests stay plain
synchronous functions. No socket is opened: requests go straight into the app.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from assetfiles.config import Settings
from assetfiles.server.app import create_app, routes_of
from tests.backends import backend_env
from tests.helpers import NO_RATE_LIMITS, SECRET_KEY, Server

BASE_URL = "http://assetfiles.test"


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` in os.environ while the settings read it (the same ASSETFILES_* variables a
    subprocess server would get); AWS credentials stay, for the S3 client made later."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if name.startswith("AWS_"):
                continue
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class InProcessServer(Server):
    """A seeded data directory served by the app in this process."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        env = {
            "ASSETFILES_SECRET_KEY": SECRET_KEY,
            **NO_RATE_LIMITS,
            **backend_env(data_dir),
            **(extra_env or {}),
        }
        with _environment(env):
            settings = Settings(data_dir=data_dir, access_log=False)
        super().__init__(BASE_URL, data_dir, background=None)  # type: ignore[arg-type]
        self.settings = settings
        self._portal_context = start_blocking_portal()
        self._portal: BlockingPortal = self._portal_context.__enter__()
        app = create_app(settings)
        inner = routes_of(app)
        self.app = inner
        self._lifespan: AbstractAsyncContextManager[Any] = inner.router.lifespan_context(inner)
        self._portal.call(self._lifespan.__aenter__)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        self._client = httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Into the app, or, for a URL elsewhere (an object store's presigned URL), over the network."""
        if "://" in url and not url.startswith(BASE_URL):
            return super().request(method, url, **kwargs)
        return self._portal.call(lambda: self._client.request(method, url, **kwargs))

    def stop(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal.call(self._lifespan.__aexit__, None, None, None)
        self._portal_context.__exit__(None, None, None)
