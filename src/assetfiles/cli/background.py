"""``assetfiles serve`` in a child process on a free loopback port: for the demo, tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BackgroundServer:
    """Starts the server, waits until ``/healthz`` answers, and stops it on exit.

    With ``own_group`` (tests and benchmarks) the server runs in a process group of its own, and
    :meth:`stop` ends the whole group: a worker its main process did not stop (killed first, or
    respawned while stopping) would otherwise go on holding the port and the catalog. The demo
    keeps the server in the demo's own process group, so that what the terminal sends the demo
    (Ctrl-C, the hang-up of a closed window) reaches the server too.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        port: int | None = None,
        own_group: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.own_group = own_group
        self.workers = workers
        self.env = env or {}
        self.log = log
        self.port = port or free_port()
        #: with ASSETFILES_TLS_CERT in ``env`` the server speaks HTTPS, checked against that certificate
        self.certificate = self.env.get("ASSETFILES_TLS_CERT")
        scheme = "https" if self.certificate else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        output: IO[bytes] | int = self.log.open("wb") if self.log else subprocess.DEVNULL
        command = [
            sys.executable, "-m", "assetfiles", "serve", "--data-dir", str(self.data_dir),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **self.env},
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0 if self.own_group else None,
        )
        context = ssl.create_default_context(cafile=self.certificate) if self.certificate else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                detail = self.log.read_text() if self.log else f"exit code {self.process.returncode}"
                raise RuntimeError(f"assetfiles serve exited: {detail}")
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own server's URL
                    f"{self.base_url}/healthz", timeout=1, context=context
                ) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"assetfiles serve did not answer on {self.base_url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.own_group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
