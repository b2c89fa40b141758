"""What an operator sees: request ids, access logs free of secrets, metrics, readiness."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.backends import BACKEND, BLOBS
from tests.helpers import Server, encryption, run_cli, seed_and_start, start_server, write_fixture

TOKEN = "tok-ops-rw-0123456789abcdef"
DEVICE_SECRET = "dev-ops-secret-0123456789"
APP_KEY, APP_SECRET = "5d6e7f80-1a2b-4c3d-8e4f-5a6b7c8d9e0f", "6e7f8091-2b3c-4d4e-9f50-6b7c8d9e0f1a"


def document() -> dict[str, Any]:
    return {
        "organizations": [
            {
                "id": "o-ops",
                "tokens": [{"name": "ops", "secret": TOKEN, "permissions": ["read", "write"]}],
                "applications": [{"app_key": APP_KEY, "app_secret": APP_SECRET, "policies": ["asset:read"]}],
                "products": [{"id": "p1", "devices": [{"id": "d1", "secret": DEVICE_SECRET}]}],
                "assets": [
                    {
                        "id": "a-ops",
                        "name": "Ops",
                        "signals": [{"id": "s", "channel": "p1.d1.data_in.x"}],
                        "content": [{"path": "files/a.txt", "enos_category": "feature"}],
                    }
                ],
            }
        ]
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ops")
    running = seed_and_start(root, document(), {"files/a.txt": b"hello operators\n"})
    yield running
    running.stop()


def log_lines(server: Server) -> list[dict[str, Any]]:
    log = server.data_dir.parent / f"server-{server.data_dir.name}.log"
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_request_ids_and_a_secret_free_access_log(server: Server) -> None:
    listing = """{ assetContents(filters: {association: {type: "asset", id: "a-ops"}}) {
                     assetContents { url enos { fileUri } } } }"""
    answer = httpx.post(
        server.graphql_url,
        json={"query": listing},
        headers={"Authorization": f"Automation {TOKEN}", "X-Request-Id": "trace-ops-1"},
    )
    assert answer.headers["x-request-id"] == "trace-ops-1"
    item = answer.json()["data"]["assetContents"]["assetContents"][0]
    signed = item["url"]
    assert httpx.get(signed, follow_redirects=True).content == b"hello operators\n"
    params = httpx.URL(signed).params
    signature = params.get("sig") or params["X-Amz-Signature"]  # ours, or the object store's
    # an id we would not echo (spaces, too long) is replaced by our own
    odd = httpx.get(f"{server.base_url}/healthz", headers={"X-Request-Id": "x y"})
    assert odd.headers["x-request-id"] != "x y" and len(odd.headers["x-request-id"]) == 36
    stamp = int(time.time() * 1000)
    token = httpx.post(
        f"{server.base_url}/apim-token-service/v2.0/token/get",
        json={"appKey": APP_KEY, "encryption": encryption(APP_KEY, stamp, APP_SECRET), "timestamp": stamp},
    ).json()["data"]["accessToken"]
    info = httpx.get(
        f"{server.base_url}/connect-service/v2.1/files",
        params={"action": "getFileInfo", "orgId": "o-ops", "fileUri": item["enos"]["fileUri"],
                "category": "feature", "assetId": "a-ops"},
        headers={"apim-accesstoken": token},
    )  # fmt: skip
    assert info.json()["requestId"] == info.headers["x-request-id"]
    upload = httpx.put(
        f"{server.base_url}/api/devices/p1/d1/content?name=log.csv",
        content=b"t,v\n",
        headers={"Authorization": f"Device {DEVICE_SECRET}"},
    )
    assert upload.status_code == 201
    refused = httpx.post(server.graphql_url, json={"query": "{ __typename }"},
                         headers={"Authorization": "Automation not-a-token-at-all"})  # fmt: skip
    assert refused.status_code == 401
    time.sleep(0.3)  # the access line is written as the response completes
    raw = (server.data_dir.parent / f"server-{server.data_dir.name}.log").read_text()
    for secret in (TOKEN, DEVICE_SECRET, APP_SECRET, token, signature, "not-a-token-at-all"):
        assert secret not in raw
    lines = log_lines(server)
    access = [line for line in lines if line["logger"] == "assetfiles.access"]
    traced = [line for line in access if line["request_id"] == "trace-ops-1"]
    assert len(traced) == 1
    assert traced[0]["face"] == "graphql" and traced[0]["principal"] == "ops" and traced[0]["org"] == "o-ops"
    assert traced[0]["status"] == 200 and traced[0]["path"] == "/api/graphql"
    if BLOBS == "local":  # on S3 the URL is the object store's own
        download = next(line for line in access if line["path"].startswith("/transfer/content/"))
        assert download["org"] == "o-ops" and download["bytes_out"] == len(b"hello operators\n")
        assert "?" not in download["path"]
    enos = next(line for line in access if line["face"] == "enos")
    assert enos["principal"] == APP_KEY and enos["request_id"] == info.headers["x-request-id"]
    device = next(line for line in access if line["face"] == "device")
    assert device["principal"] == "p1.d1" and device["bytes_in"] == 4
    assert all(line["request_id"] != "-" for line in access)


def test_metrics_count_requests_bytes_and_token_outcomes(server: Server) -> None:
    stamp = int(time.time() * 1000)
    httpx.post(f"{server.base_url}/apim-token-service/v2.0/token/get",
               json={"appKey": APP_KEY, "encryption": "0" * 64, "timestamp": stamp})  # fmt: skip
    httpx.post(
        server.graphql_url,
        json={"query": "{ assetsCount }"},
        headers={"Authorization": f"Automation {TOKEN}"},
    )
    metrics = httpx.get(f"{server.base_url}/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    body = metrics.text
    assert 'assetfiles_requests_total{face="graphql",method="POST",operation="query",status="200"}' in body
    assert 'assetfiles_enos_token_requests_total{operation="get",outcome="1003"}' in body
    assert "assetfiles_request_duration_seconds_bucket" in body
    assert "assetfiles_uploads_in_flight" in body


def test_readiness_reports_each_dependency(server: Server) -> None:
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"catalog": "ok", "migrations": "ok", "blobs": "ok"}}
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}


@pytest.mark.skipif(BLOBS != "local", reason="breaks the local blob directory")
def test_readiness_fails_when_blobs_or_catalog_fail(tmp_path: Path) -> None:
    """In process: the blob directory stops being writable, the catalog's schema falls behind,
    then the catalog file is no database at all."""

    from assetfiles.config import Settings
    from assetfiles.server.app import create_app, routes_of

    async def scenario() -> None:
        app = create_app(Settings(data_dir=tmp_path, secret_key="k" * 32, database_url=None))
        inner = routes_of(app)
        async with inner.router.lifespan_context(inner):
            inner.state.services.health.fresh_seconds = 0  # every probe checks again
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
            assert (await client.get("/readyz")).status_code == 200
            tmp = tmp_path / "blobs" / "tmp"
            shutil.rmtree(tmp)
            tmp.write_text("not a directory")  # root ignores permissions; a file in the way does not
            answer = await client.get("/readyz")
            assert answer.status_code == 503 and answer.json()["checks"]["blobs"].startswith("not writable")
            tmp.unlink()
            tmp.mkdir()
            services = inner.state.services
            with services.stores.engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
            answer = await client.get("/readyz")
            assert answer.status_code == 503
            assert answer.json()["checks"]["migrations"].startswith("at 0003")
            services.stores.engine.dispose()
            (tmp_path / "catalog.sqlite3").write_bytes(b"garbage" * 1000)
            for suffix in ("-wal", "-shm"):
                (tmp_path / f"catalog.sqlite3{suffix}").unlink(missing_ok=True)
            answer = await client.get("/readyz")
            assert answer.status_code == 503 and answer.json()["checks"]["catalog"].startswith(
                "does not answer"
            )
            await client.aclose()

    asyncio.run(scenario())


# -- configuration ---------------------------------------------------------------------------------


def test_serve_reads_a_config_file_and_the_environment_overrides_it(tmp_path: Path) -> None:
    from assetfiles.cli.background import free_port

    port, other = free_port(), free_port()
    config = tmp_path / "server.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nport = {other}\nlog_format = "text"\naccess_log = false\n'
    )
    env = {**os.environ, "ASSETFILES_CONFIG": str(config), "ASSETFILES_PORT": str(port)}
    env.pop("ASSETFILES_DATA_DIR", None)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "assetfiles", "serve"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError((tmp_path / "serve.log").read_text())
        assert (tmp_path / "data" / "catalog.sqlite3").exists()  # data_dir from the file
        httpx.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "assetfiles.access" not in output  # access_log = false from the file
    assert not any(line.startswith("{") for line in output.splitlines())  # text, not JSON


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("port = \n", "not valid TOML"),
        ("prot = 8000\nwrokers = 2\n", "unknown setting(s) 'prot', 'wrokers'"),
        ("port = 99999\n", "port"),
        ('log_format = "yaml"\n', "log_format"),
        ("\xff\xfe", "not valid TOML"),
    ],
)
def test_bad_config_files_are_refused_by_name(tmp_path: Path, content: str, fragment: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_bytes(content.encode("latin-1"))
    for command in (["config", "show"], ["serve"], ["migrate"]):
        result = run_cli(*command, "--config", str(config), "--data-dir", str(tmp_path / "d"))
        assert result.returncode == 2 and fragment in result.stderr, (command, result.stderr)
    missing = run_cli("config", "show", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(
        'secret_key = "very-secret-signing-key"\ndatabase_url = "postgresql://app:pw123@db/x"\n'
    )
    shown = run_cli("config", "show", "--config", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    assert "very-secret-signing-key" not in shown.stdout and "pw123" not in shown.stdout
    values = json.loads(shown.stdout)
    assert values["secret_key"] == "********" and values["database_url"] == "postgresql://app:***@db/x"


def test_migrate_command(tmp_path: Path) -> None:
    result = run_cli("migrate", "--data-dir", str(tmp_path / "fresh"))
    assert result.returncode == 0, result.stderr
    head = sorted(
        p.name for p in (Path(__file__).parents[2] / "src/assetfiles/store/migrations/versions").glob("0*.py")
    )[-1][:4]
    assert f"is at revision {head}" in result.stdout


def test_the_settings_reference_in_the_docs_is_the_generated_one() -> None:
    from assetfiles.cli.operations import settings_reference

    docs = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert settings_reference() in docs, "regenerate with: assetfiles config reference"


# -- audit log ---------------------------------------------------------------------------------------


def test_audit_log_records_who_changed_what_through_which_face(tmp_path: Path) -> None:
    running = seed_and_start(tmp_path, document(), {"files/a.txt": b"hello operators\n"})
    data_dir = str(running.data_dir)
    try:
        auth = {"Authorization": f"Automation {TOKEN}"}
        data = b"audited bytes"
        reserve = """mutation($input: ContentUploadInput!) {
                       createContentUpload(input: $input) { id uploadUrl } }"""
        upload = running.data(reserve, {"input": {"name": "r.bin", "length": len(data),
                              "sha256": hashlib.sha256(data).hexdigest(),
                              "associations": [{"type": "asset", "id": "a-ops"}]}}, token=TOKEN)  # fmt: skip
        content_id = upload["createContentUpload"]["id"]
        assert httpx.put(upload["createContentUpload"]["uploadUrl"], content=data).status_code == 201
        tags = 'mutation($id: ID!) { setContentTags(id: $id, tags: [{name: "kind", value: "x"}]) { id } }'
        running.data(tags, {"id": content_id}, token=TOKEN)
        running.data("mutation($id: ID!) { deleteContent(id: $id) { id } }", {"id": content_id}, token=TOKEN)
        device = httpx.put(f"{running.base_url}/api/devices/p1/d1/content?name=d.csv", content=b"x",
                           headers={"Authorization": f"Device {DEVICE_SECRET}"})  # fmt: skip
        assert device.status_code == 201
        for _ in range(5):
            httpx.post(running.graphql_url, json={"query": "{ assetsCount }"},
                       headers={"Authorization": "Automation wrong-token-0123456789"})  # fmt: skip
        for _ in range(2):
            httpx.put(f"{running.base_url}/api/devices/p1/d1/content?name=e.csv", content=b"x",
                      headers={"Authorization": "Device wrong-device-secret"})  # fmt: skip
        assert (
            httpx.post(running.graphql_url, json={"query": "{ assetsCount }"}, headers=auth).status_code
            == 200
        )
    finally:
        running.stop()  # shutting down writes the counted failures
    created = run_cli("token", "create", "--org", "o-ops", "--name", "audited", "--data-dir", data_dir)
    assert created.returncode == 0, created.stderr
    assert (
        run_cli("token", "revoke", "--org", "o-ops", "--name", "audited", "--data-dir", data_dir).returncode
        == 0
    )
    result = run_cli("audit", "--org", "o-ops", "--json", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    seen = {(e["action"], e["face"], e["actor"], e["target"]) for e in events}
    assert ("content.created", "transfer", "ops", content_id) in seen
    assert ("content.tags_changed", "graphql", "ops", content_id) in seen
    assert ("content.deleted", "graphql", "ops", content_id) in seen
    assert any(
        e["action"] == "content.created" and e["face"] == "device" and e["actor"] == "p1.d1" for e in events
    )
    assert any(e["action"] == "content.created" and e["face"] == "cli" for e in events)  # the fixture's file
    assert ("token.created", "cli", None, "audited") in seen and (
        "token.revoked",
        "cli",
        None,
        "audited",
    ) in seen
    tags = next(e for e in events if e["action"] == "content.tags_changed")
    assert tags["detail"] == {"tags": {"kind": "x"}}
    everything = [
        json.loads(line) for line in run_cli("audit", "--json", "--data-dir", data_dir).stdout.splitlines()
    ]
    failures: dict[str, int] = {}
    for event in everything:
        if event["action"] == "auth.failed":  # one row per face and minute: a run may span two minutes
            failures[event["face"]] = failures.get(event["face"], 0) + event["count"]
    assert failures == {"graphql": 5, "device": 2}
    recent = run_cli("audit", "--since", "1h", "--data-dir", data_dir)
    assert recent.returncode == 0 and "content.deleted" in recent.stdout
    assert run_cli("audit", "--since", "2099-01-01T00:00:00Z", "--json", "--data-dir", data_dir).stdout == ""
    bad = run_cli("audit", "--since", "last tuesday", "--data-dir", data_dir)
    assert bad.returncode == 2 and "--since" in bad.stderr


# -- backup and restore --------------------------------------------------------------------------------


@pytest.mark.skipif(BLOBS != "local" or BACKEND != "sqlite", reason="backs up the embedded default only")
def test_backup_while_serving_then_restore_and_fsck(tmp_path: Path) -> None:
    running = seed_and_start(tmp_path / "live", document(), {"files/a.txt": b"hello operators\n"})
    backup_dir = tmp_path / "backup"
    try:
        # uploads keep going while the backup runs
        def upload_many() -> None:
            for index in range(40):
                httpx.put(
                    f"{running.base_url}/api/devices/p1/d1/content?name=b-{index}.csv",
                    content=f"row {index}\n".encode(),
                    headers={"Authorization": f"Device {DEVICE_SECRET}"},
                )

        uploader = threading.Thread(target=upload_many)
        uploader.start()
        result = run_cli("backup", str(backup_dir), "--data-dir", str(running.data_dir))
        uploader.join()
        assert result.returncode == 0, result.stderr
        refused = run_cli("backup", str(backup_dir), "--data-dir", str(running.data_dir))
        assert refused.returncode == 2 and "not empty" in refused.stderr
    finally:
        running.stop()
    assert oct(backup_dir.stat().st_mode & 0o777) == "0o700"
    assert not (backup_dir / "secret.key").exists()  # the tests' key comes from the environment
    fsck = run_cli("fsck", "--verify", "--data-dir", str(backup_dir))
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    restored = start_server(backup_dir)
    try:
        query = """{ assetContents(filters: {association: {type: "asset", id: "a-ops"}},
                                   devices: [{product_id: "p1", device_id: "d1"}], pagination: {limit: 100}) {
                       totalCount assetContents { name url } } }"""
        listing = restored.data(query, token=TOKEN)["assetContents"]
        assert 0 <= listing["totalCount"] <= 40  # the snapshot's moment; every file in it is whole
        for item in listing["assetContents"]:
            assert httpx.get(item["url"]).content == f"row {item['name'][2:-4]}\n".encode()
        stamp = int(time.time() * 1000)
        token = httpx.post(f"{restored.base_url}/apim-token-service/v2.0/token/get",
                           json={"appKey": APP_KEY, "encryption": encryption(APP_KEY, stamp, APP_SECRET),
                                 "timestamp": stamp})  # fmt: skip
        assert token.json()["status"] == 0  # the application secret opens with the restored key
    finally:
        restored.stop()


def test_backup_refuses_other_backends_and_missing_catalogs(tmp_path: Path) -> None:
    empty = run_cli("backup", str(tmp_path / "b"), "--data-dir", str(tmp_path / "nothing"),
                    env={"ASSETFILES_DATABASE_URL": "", "ASSETFILES_BLOB_URL": ""})  # fmt: skip
    assert empty.returncode == 2 and "no catalog" in empty.stderr
    elsewhere = run_cli("backup", str(tmp_path / "c"), env={"ASSETFILES_DATABASE_URL": "postgresql://x@h/db"})
    assert elsewhere.returncode == 2 and "pg_dump" in elsewhere.stderr


@pytest.mark.skipif(BLOBS != "local" or BACKEND != "sqlite", reason="backs up the embedded default only")
def test_backup_copies_a_generated_server_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run_cli("migrate", "--data-dir", str(data_dir), env={"ASSETFILES_SECRET_KEY": ""}).returncode == 0
    (data_dir / "secret.key").write_text("k" * 64)
    os.chmod(data_dir / "secret.key", 0o600)
    result = run_cli(
        "backup", str(tmp_path / "b"), "--data-dir", str(data_dir), env={"ASSETFILES_SECRET_KEY": ""}
    )
    assert result.returncode == 0 and "server key" in result.stdout, result.stderr
    copied = tmp_path / "b" / "secret.key"
    assert copied.read_text() == "k" * 64 and oct(copied.stat().st_mode & 0o777) == "0o600"


# -- the Host header -----------------------------------------------------------------------------


def test_hostile_host_headers_never_reach_signed_urls(server: Server, tmp_path: Path) -> None:
    listing = (
        '{ assetContents(filters: {association: {type: "asset", id: "a-ops"}}) { assetContents { url } } }'
    )
    auth = {"Authorization": f"Automation {TOKEN}"}

    def ask(base: str, host: str) -> httpx.Response:
        return httpx.post(f"{base}/api/graphql", json={"query": listing}, headers={**auth, "Host": host})

    hostile = ask(server.base_url, "evil.example/x?y=")
    assert hostile.status_code == 400 and hostile.json()["errors"][0]["extensions"]["field"] == "Host"
    plain = ask(server.base_url, "files.example.com:8443")
    assert (
        plain.json()["data"]["assetContents"]["assetContents"][0]["url"].startswith(
            "http://files.example.com:8443/transfer/"
        )
        or BLOBS != "local"
    )
    stamp = int(time.time() * 1000)
    token = httpx.post(
        f"{server.base_url}/apim-token-service/v2.0/token/get",
        json={"appKey": APP_KEY, "encryption": encryption(APP_KEY, stamp, APP_SECRET), "timestamp": stamp},
    ).json()["data"]["accessToken"]
    enos_listing = listing.replace("{ url }", "{ enos { fileUri } }")
    uri = server.data(enos_listing, token=TOKEN)["assetContents"]["assetContents"][0]["enos"]["fileUri"]
    enos = httpx.get(
        f"{server.base_url}/connect-service/v2.1/files",
        params={
            "action": "getDownloadUrl",
            "orgId": "o-ops",
            "fileUri": uri,
            "category": "feature",
            "assetId": "a-ops",
        },
        headers={"apim-accesstoken": token, "Host": "evil.example/x?y="},
    )
    assert enos.status_code == 400 and "Host" in enos.json()["msg"]
    # with an allow-list, only those hosts
    strict = start_server(server.data_dir, {"ASSETFILES_ALLOWED_HOSTS": '["files.example.com"]'})
    try:
        assert ask(strict.base_url, "other.example").status_code == 400
        assert ask(strict.base_url, "files.example.com:8443").status_code == 200
        assert ask(strict.base_url, "FILES.example.com").status_code == 200
    finally:
        strict.stop()


# -- at rest -------------------------------------------------------------------------------------------


@pytest.mark.skipif(BLOBS != "local" or BACKEND != "sqlite", reason="the embedded default's files")
def test_data_directory_catalog_and_blobs_are_owner_only(server: Server, tmp_path: Path) -> None:
    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o777

    assert mode(server.data_dir) == 0o700
    catalogs = list(server.data_dir.glob("catalog.sqlite3*"))
    assert catalogs and all(mode(path) == 0o600 for path in catalogs), [
        (p.name, oct(mode(p))) for p in catalogs
    ]
    blobs = list((server.data_dir / "blobs").rglob("*"))
    assert any(path.is_file() for path in blobs)
    exposed = [(str(p), oct(mode(p))) for p in blobs if mode(p) & 0o077]
    assert exposed == []
    # for nginx offload, group-readable on request
    shared = start_server(tmp_path / "shared", {"ASSETFILES_BLOB_GROUP_READ": "true"})
    try:
        fixture = write_fixture(tmp_path, document(), {"files/a.txt": b"group\n"})
        shared_env = {"ASSETFILES_BLOB_GROUP_READ": "true"}
        run_cli("apply", str(fixture), "--data-dir", str(tmp_path / "shared"), env=shared_env)
        device = httpx.put(f"{shared.base_url}/api/devices/p1/d1/content?name=g.csv", content=b"g\n",
                           headers={"Authorization": f"Device {DEVICE_SECRET}"})  # fmt: skip
        assert device.status_code == 201, device.text
        root = tmp_path / "shared" / "blobs"
        stored = [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"]
        assert stored and all(mode(p) == 0o640 for p in stored), [oct(mode(p)) for p in stored]
    finally:
        shared.stop()
