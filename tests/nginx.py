"""Debian's nginx, started by a test in front of its servers with a configuration of its own."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from assetfiles.cli.background import free_port

MISSING = "nginx is not installed (Debian package 'nginx'; .ci/run installs it when it can)"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None)


@dataclass
class Nginx:
    base_url: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def start_nginx(root: Path, upstream: str, server: str, port: int | None = None) -> Nginx:
    """nginx listening on 127.0.0.1 with ``upstream`` (the body of ``upstream assetfiles {}``) and
    ``server`` (the body of its ``server {}`` after ``listen``); its files under ``root``.
    Returns once ``/healthz`` answers through it."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError(MISSING)
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    # Test directories under /tmp/pytest-of-<user> are private: workers run as the same user.
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};" if os.getuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""
        {user}
        worker_processes 1;
        daemon off;
        pid {root}/nginx.pid;
        error_log {root}/nginx-error.log;
        events {{ worker_connections 1024; }}
        http {{
          access_log off;
          client_body_temp_path {root}/body;
          proxy_temp_path {root}/proxy;
          fastcgi_temp_path {root}/fastcgi;
          uwsgi_temp_path {root}/uwsgi;
          scgi_temp_path {root}/scgi;
          upstream assetfiles {{
        """)
        + textwrap.indent(textwrap.dedent(upstream).strip(), " " * 12)
        + f"\n  }}\n  server {{\n    listen 127.0.0.1:{port};\n"
        + textwrap.indent(textwrap.dedent(server).strip(), " " * 4)
        + "\n  }\n}\n"
    )
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: see {root}/nginx-error.log")
        time.sleep(0.05)
    return Nginx(base, port, process)
