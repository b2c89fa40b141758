"""``assetfiles sync`` against a real server over loopback: mirroring, increments, faults, bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetfiles.cli.background import free_port
from tests.backends import BLOBS
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import Server, run_cli, seed_and_start, sha256

TOKEN = "tok-sync-rw-0123456789"
#: The fault proxy stands in front of assetfiles; on S3 the bytes come from the store directly.
through_proxy = pytest.mark.skipif(BLOBS != "local", reason="downloads bypass the fault proxy on S3")
OTHER_TOKEN = "tok-sync-other-0123456789"
BIG = 48 * 1024 * 1024


def sync_files() -> dict[str, bytes]:
    rng = random.Random(7)
    files = {
        "files/manual.pdf": b"%PDF-1.4\n" + rng.randbytes(4000),
        "files/big.bin": rng.randbytes(3 * 1024 * 1024 + 5),
        "files/notes.txt": b"first version\n",
        "files/d1-log.csv": b"t,v\n" + rng.randbytes(2000),
        "files/d2-log.csv": b"t,w\n" + rng.randbytes(3000),
        "files/huge.bin": rng.randbytes(BIG),
    }
    for index in range(6):
        files[f"files/faulty-{index}.bin"] = rng.randbytes(1024 * 1024 + index * 7919)
    return files


def sync_document() -> dict[str, Any]:
    return {
        "organizations": [
            {
                "id": "o-sync",
                "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}],
                "products": [{"id": "p1", "devices": [{"id": "d1", "secret": "d1-secret-0123"},
                                                      {"id": "d2", "secret": "d2-secret-0123"}]}],
                "assets": [
                    {
                        "id": "a-mirror",
                        "name": "Mirror",
                        "signals": [
                            {"id": "s1", "channel": "p1.d1.data_in.temp"},
                            {"id": "s2", "channel": "p1.d2.data_in.flow"},
                        ],
                        "content": [
                            {"path": "files/manual.pdf", "tags": {"kind": "manual"},
                             "created_by": {"user": "al"}},
                            {"path": "files/big.bin", "tags": {"kind": "blob"}},
                            {"path": "files/notes.txt", "created_by": {"user": "al"}},
                            {"path": "files/d1-log.csv", "created_by": {"device": "p1.d1"}},
                            {"path": "files/d2-log.csv", "created_by": {"device": "p1.d2"}},
                        ],
                    },
                    {"id": "a-faults", "name": "Faults",
                     "content": [{"path": f"files/faulty-{i}.bin"} for i in range(6)]},
                    {"id": "a-huge", "name": "Huge", "content": [{"path": "files/huge.bin"}]},
                    {"id": "a-hostile", "name": "Hostile"},
                ],
            },
            {
                "id": "o-sync-other",
                "tokens": [{"name": "rw", "secret": OTHER_TOKEN, "permissions": ["read"]}],
                "assets": [{"id": "a-foreign", "name": "Foreign"}],
            },
        ]
    }  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("sync-world")
    running = seed_and_start(root, sync_document(), sync_files())
    yield running, root / "fixture.yaml"
    running.stop()


@pytest.fixture
def server(world: tuple[Server, Path]) -> Server:
    return world[0]


def sync(url: str, *args: str, token: str = TOKEN) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``assetfiles sync --json``; returns exit code, events (the summary last) and stderr."""
    result = run_cli("sync", *args, "--url", url, "--token", token, "--json")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.returncode, events, result.stderr


def summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events and events[-1]["event"] == "summary", events
    return events[-1]


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and ".assetfiles" not in path.relative_to(directory).parts
    }


def upload(server: Server, asset: str, name: str, data: bytes) -> str:
    ticket = server.data(
        """mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }""",
        {"i": {"name": name, "length": len(data), "sha256": sha256(data),
               "associations": [{"type": "asset", "id": asset}]}},
        token=TOKEN,
    )["createContentUpload"]  # fmt: skip
    response = httpx.put(ticket["uploadUrl"], content=data)
    assert response.status_code == 201, response.text
    content_id: str = ticket["id"]
    return content_id


def delete(server: Server, content_id: str) -> None:
    server.data("mutation($i: ID!) { deleteContent(id: $i) { id } }", {"i": content_id}, token=TOKEN)


def test_mirror_is_byte_identical_and_second_run_fetches_nothing(server: Server, tmp_path: Path) -> None:
    code, events, stderr = sync(server.base_url, "a-mirror", str(tmp_path))
    assert code == 0, stderr
    files = server.files
    assert tree(tmp_path / "a-mirror") == {
        "devices/p1.d1/d1-log.csv": files["files/d1-log.csv"],
        "devices/p1.d2/d2-log.csv": files["files/d2-log.csv"],
        "user/big.bin": files["files/big.bin"],
        "user/manual.pdf": files["files/manual.pdf"],
        "user/notes.txt": files["files/notes.txt"],
    }
    assert summary(events)["downloaded"] == 5
    assert summary(events)["received_bytes"] == sum(len(v) for v in tree(tmp_path / "a-mirror").values())
    assert not list((tmp_path / "a-mirror" / ".assetfiles" / "partial").iterdir())

    code, events, _ = sync(server.base_url, "a-mirror", str(tmp_path))
    assert code == 0
    assert summary(events)["downloaded"] == 0
    assert summary(events)["received_bytes"] == 0
    assert summary(events)["unchanged"] == 5


def test_changed_file_is_fetched_again_and_deleted_content_removed(
    world: tuple[Server, Path], tmp_path: Path
) -> None:
    server, fixture = world
    assert sync(server.base_url, "a-mirror", str(tmp_path))[0] == 0
    extra = upload(server, "a-mirror", "extra.txt", b"extra bytes")
    notes = fixture.parent / "files" / "notes.txt"
    notes.write_bytes(b"second version, longer\n")
    try:
        applied = run_cli("apply", str(fixture), "--data-dir", str(server.data_dir))
        assert applied.returncode == 0, applied.stderr
        code, events, _ = sync(server.base_url, "a-mirror", str(tmp_path))
        assert code == 0
        fetched = sorted(e["path"] for e in events if e["event"] == "downloaded")
        assert fetched == ["user/extra.txt", "user/notes.txt"]
        assert (tmp_path / "a-mirror/user/notes.txt").read_bytes() == b"second version, longer\n"

        delete(server, extra)
        code, events, _ = sync(server.base_url, "a-mirror", str(tmp_path), "--dry-run", "--delete")
        assert code == 0
        assert [e["event"] for e in events if e["event"].startswith("would")] == ["would_delete"]
        assert (tmp_path / "a-mirror/user/extra.txt").exists()  # --dry-run changes nothing
        code, events, _ = sync(server.base_url, "a-mirror", str(tmp_path))
        assert (tmp_path / "a-mirror/user/extra.txt").exists()  # not without --delete
        code, events, _ = sync(server.base_url, "a-mirror", str(tmp_path), "--delete")
        assert code == 0
        assert [e["path"] for e in events if e["event"] == "deleted"] == ["user/extra.txt"]
        assert not (tmp_path / "a-mirror/user/extra.txt").exists()
    finally:
        notes.write_bytes(server.files["files/notes.txt"])
        run_cli("apply", str(fixture), "--data-dir", str(server.data_dir))


def test_a_file_deleted_locally_is_fetched_again(server: Server, tmp_path: Path) -> None:
    assert sync(server.base_url, "a-mirror", str(tmp_path))[0] == 0
    (tmp_path / "a-mirror/user/manual.pdf").unlink()
    (tmp_path / "a-mirror/user/big.bin").write_bytes(b"truncated")
    code, events, _ = sync(server.base_url, "a-mirror", str(tmp_path))
    assert code == 0
    assert sorted(e["path"] for e in events if e["event"] == "downloaded") == [
        "user/big.bin",
        "user/manual.pdf",
    ]
    assert (tmp_path / "a-mirror/user/big.bin").read_bytes() == server.files["files/big.bin"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tag", "kind=manual"], ["user/manual.pdf"]),
        (["--tag", "kind"], ["user/big.bin", "user/manual.pdf"]),
        (["--name", "*.CSV"], ["devices/p1.d1/d1-log.csv", "devices/p1.d2/d2-log.csv"]),
        (["--content-type", "application/pdf"], ["user/manual.pdf"]),
        (["--modified-since", "2999-01-01"], []),
        (["--modified-since", "2000-01-01T00:00:00Z", "--name", "notes*"], ["user/notes.txt"]),
    ],
)
def test_filters(server: Server, tmp_path: Path, args: list[str], expected: list[str]) -> None:
    code, events, stderr = sync(server.base_url, "a-mirror", str(tmp_path), *args)
    assert code == 0, stderr
    assert sorted(e["path"] for e in events if e["event"] == "downloaded") == expected


def test_all_assets_and_quiet_human_output(server: Server, tmp_path: Path) -> None:
    result = run_cli("sync", "--all", str(tmp_path), "--url", server.base_url, "--token", TOKEN, "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "a-faults", "a-hostile", "a-huge", "a-mirror",
    ]  # fmt: skip
    result = run_cli("sync", "--all", str(tmp_path), "--url", server.base_url, "--token", TOKEN)
    assert result.returncode == 0
    assert "4 asset(s), 0 downloaded" in result.stdout


def test_hostile_names_stay_inside_and_never_collide(server: Server, tmp_path: Path) -> None:
    long_name = "ü" * 200 + ".csv"  # 200 characters, 400 bytes
    names = [
        "../x",
        "/etc/x",
        "CON",
        "con.txt",
        "a/../../b",
        long_name,
        "dup.txt",
        "DUP.txt",
        "dup.txt",
        ". .",
    ]
    ids = [upload(server, "a-hostile", name, f"{index}:{name}".encode()) for index, name in enumerate(names)]
    try:
        code, _, stderr = sync(server.base_url, "a-hostile", str(tmp_path))
        assert code == 0, stderr
        root = tmp_path / "a-hostile" / "user"
        written = {p.name: p.read_bytes() for p in root.iterdir()}
        assert len(written) == len(names)  # nothing overwrote anything
        assert {data.split(b":", 1)[1].decode() for data in written.values()} == set(names)
        for name in written:
            assert "/" not in name and "\\" not in name and name not in (".", "..")
            assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}
            assert len(name.encode()) <= 255
        assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))
        assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()
        # the same listing gives the same paths on another run, in another folder
        assert sync(server.base_url, "a-hostile", str(tmp_path / "again"))[0] == 0
        assert sorted(p.name for p in (tmp_path / "again/a-hostile/user").iterdir()) == sorted(written)
    finally:
        for content_id in ids:
            delete(server, content_id)


def test_unknown_and_foreign_assets_fail_with_exit_1(server: Server, tmp_path: Path) -> None:
    code, events, _ = sync(server.base_url, "a-nope", "a-foreign", "a-mirror", str(tmp_path))
    assert code == 1
    failed = {e["asset"]: e["reason"] for e in events if e["event"] == "asset_failed"}
    assert set(failed) == {"a-nope", "a-foreign"}
    assert all("not found" in reason for reason in failed.values())
    assert summary(events)["downloaded"] == 5  # the good asset still synced


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--token", "tok-wrong-0123456789"], "refused the token"),
        (["--url", "http://127.0.0.1:{port}"], "cannot reach"),
        # a wrong path on the right server, and a server that is not assetfiles (its console's pages)
        (["--url", "{base}/nowhere"], "no GraphQL API at {base}/nowhere/api/graphql"),
        (["--url", "{base}/console/static"], "no GraphQL API at {base}/console/static/api/graphql"),
        (["--url", "ftp://example"], "http(s) URL"),
        (["--token", ""], "missing --token"),
        (["--modified-since", "yesterday"], "--modified-since"),
        (["--tag", "=x"], "--tag"),
        (["--concurrency", "0"], "--concurrency"),
    ],
)
def test_usage_and_authentication_errors_exit_2(
    server: Server, tmp_path: Path, args: list[str], fragment: str
) -> None:
    args = [arg.format(port=free_port(), base=server.base_url) for arg in args]
    result = run_cli(
        "sync", "a-mirror", str(tmp_path / "out"), "--url", server.base_url, "--token", TOKEN, *args
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert fragment.format(base=server.base_url) in result.stderr
    assert not (tmp_path / "out" / "a-mirror").exists()


def test_bad_arguments_and_unwritable_folder_exit_2(server: Server, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for args, fragment in [
        (["a-mirror", str(blocker / "sub")], "cannot write"),
        ([], "missing DIR"),
        ([str(tmp_path)], "ASSET_ID"),
        (["--all", "a-mirror", str(tmp_path)], "not both"),
    ]:
        result = run_cli("sync", *args, "--url", server.base_url, "--token", TOKEN)
        assert result.returncode == 2, (args, result.stderr)
        assert fragment in result.stderr, (args, result.stderr)


def test_config_file_supplies_url_and_token(server: Server, tmp_path: Path) -> None:
    config = tmp_path / "client.toml"
    config.write_text(f'url = "{server.base_url}"\ntoken = "{TOKEN}"\nconcurrency = 4\n')
    result = run_cli("sync", "a-mirror", str(tmp_path / "out"), "--config", str(config), "--quiet")
    assert result.returncode == 0, result.stderr
    config.write_text('url = "x"\ncolour = "blue"\n')
    result = run_cli("sync", "a-mirror", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 2 and "colour" in result.stderr
    result = run_cli("sync", "a-mirror", str(tmp_path / "out"), "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "does not exist" in result.stderr


class FinalPathWatcher:
    """Polls the final paths during a run: a file there must always be whole."""

    def __init__(self, root: Path, sizes: dict[str, int]) -> None:
        self.root, self.sizes = root, sizes
        self.partial_seen: list[tuple[str, int]] = []
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while self.running:
            for relative, size in self.sizes.items():
                try:
                    seen = (self.root / relative).stat().st_size
                except FileNotFoundError:
                    continue
                if seen != size:
                    self.partial_seen.append((relative, seen))
            time.sleep(0.005)

    def __enter__(self) -> FinalPathWatcher:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.running = False
        self.thread.join()


@through_proxy
def test_faults_mid_transfer_end_byte_identical(server: Server, tmp_path: Path) -> None:
    faults = [Fault.RESET, Fault.TRUNCATE, Fault.ERROR_500, Fault.BUSY_429, Fault.EXPIRED_403]

    def schedule(method: str, path: str, count: int) -> Fault:
        if path == "/api/graphql":
            return Fault.ERROR_500 if count in (1, 4) else Fault.PASS  # the listing retries too
        if not path.startswith("/transfer/"):
            return Fault.PASS
        # each file meets every fault once, starting at a different one
        offset = int(path.rsplit("/", 1)[1].replace("-", ""), 16) % len(faults)
        return faults[(offset + count) % len(faults)] if count < len(faults) else Fault.PASS

    proxy = FaultProxy(server.base_url, schedule).start()
    try:
        sizes = {f"user/faulty-{i}.bin": len(server.files[f"files/faulty-{i}.bin"]) for i in range(6)}
        with FinalPathWatcher(tmp_path / "a-faults", sizes) as watcher:
            code, events, stderr = sync(proxy.base_url, "a-faults", str(tmp_path))
        assert code == 0, (stderr, events)
        assert watcher.partial_seen == []
        for i in range(6):
            assert (tmp_path / f"a-faults/user/faulty-{i}.bin").read_bytes() == server.files[
                f"files/faulty-{i}.bin"
            ]
        kinds = {fault for _, fault in proxy.faults}
        assert kinds == set(faults) | {Fault.ERROR_500}
        # resets and truncations resumed: the bytes passed stay well under twice the total
        assert proxy.transfer_bytes() < 1.6 * sum(sizes.values())
    finally:
        proxy.stop()


@through_proxy
def test_behind_a_compressing_proxy_answers_decompress_and_downloads_stay_identity(
    server: Server, tmp_path: Path
) -> None:
    """A proxy that gzips whatever the request accepts: API answers must still parse, and the
    bytes of files (whose lengths and digests are checked) must come uncompressed."""
    proxy = FaultProxy(server.base_url, compress=True).start()
    try:
        code, _events, stderr = sync(proxy.base_url, "a-mirror", str(tmp_path))
        assert code == 0, stderr
        assert proxy.compressed["/api/graphql"] > 0
        assert not [path for path in proxy.compressed if path.startswith("/transfer/")]
        assert proxy.requests.total() > proxy.requests["/api/graphql"]
    finally:
        proxy.stop()
    direct = tmp_path / "direct"
    assert sync(server.base_url, "a-mirror", str(direct))[0] == 0
    assert tree(tmp_path / "a-mirror") == tree(direct / "a-mirror")


@through_proxy
def test_expired_url_is_resolved_again_and_resumes(server: Server, tmp_path: Path) -> None:
    """The URL dies mid-body (reset), then answers 403 like an expired one: a new URL continues."""

    def schedule(method: str, path: str, count: int) -> Fault:
        if path.startswith("/transfer/"):
            return {0: Fault.RESET, 1: Fault.EXPIRED_403}.get(count, Fault.PASS)
        return Fault.PASS

    proxy = FaultProxy(server.base_url, schedule).start()
    try:
        code, _, stderr = sync(proxy.base_url, "a-faults", "--name", "faulty-0.bin", str(tmp_path))
        assert code == 0, stderr
        data = server.files["files/faulty-0.bin"]
        assert (tmp_path / "a-faults/user/faulty-0.bin").read_bytes() == data
        graphql_posts = proxy.requests["/api/graphql"]
        assert graphql_posts == 4  # introspection, asset, listing (carrying the URLs), resolve after the 403
        assert proxy.transfer_bytes() < 1.6 * len(data)
    finally:
        proxy.stop()


@through_proxy
def test_sigkill_mid_file_then_resume_fetches_less_than_half(server: Server, tmp_path: Path) -> None:
    proxy = FaultProxy(server.base_url, rate_bytes_per_second=16 * 1024 * 1024).start()
    partial_dir = tmp_path / "a-huge" / ".assetfiles" / "partial"
    try:
        command = [sys.executable, "-m", "assetfiles", "sync", "a-huge", str(tmp_path),
                   "--url", proxy.base_url, "--token", TOKEN, "--json"]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        written = 0
        while time.monotonic() < deadline and written < BIG * 0.6:
            parts = list(partial_dir.glob("*.part")) if partial_dir.exists() else []
            written = parts[0].stat().st_size if parts else 0
            time.sleep(0.02)
        assert BIG * 0.6 <= written < BIG, written
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert not (tmp_path / "a-huge/user/huge.bin").exists()
    finally:
        proxy.stop()
    counting = FaultProxy(server.base_url).start()
    try:
        code, events, stderr = sync(counting.base_url, "a-huge", str(tmp_path))
        assert code == 0, stderr
        assert (tmp_path / "a-huge/user/huge.bin").read_bytes() == server.files["files/huge.bin"]
        assert counting.transfer_bytes() < BIG / 2
        assert summary(events)["received_bytes"] < BIG / 2
    finally:
        counting.stop()
    assert not list(partial_dir.iterdir())


def test_demo_serves_and_syncs_the_demo_asset(tmp_path: Path) -> None:
    result = run_cli("demo", "--dir", str(tmp_path / "demo"), "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 downloaded" in result.stdout
    packaged = Path(__file__).parents[2] / "src/assetfiles/demo/files"
    mirror = tmp_path / "demo/mirror/a-pump-7"
    assert (mirror / "user/manual.pdf").read_bytes() == (packaged / "manual.pdf").read_bytes()
    assert (mirror / "user/firmware 2.1.bin").read_bytes() == (packaged / "fw-2.1.bin").read_bytes()
    assert (mirror / "devices/p7k2q9.pump-007/log-0001.csv").read_bytes() == (
        packaged / "log-0001.csv"
    ).read_bytes()
    again = run_cli("demo", "--dir", str(tmp_path / "demo"), "--no-progress")
    assert again.returncode == 0 and "0 downloaded" in again.stdout and "5 unchanged" in again.stdout


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_holds_it(
    server: Server, tmp_path: Path
) -> None:
    import fcntl

    tmp_path.mkdir(exist_ok=True)
    with (tmp_path / ".assetfiles.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_cli("sync", "a-mirror", str(tmp_path), "--url", server.base_url, "--token", TOKEN)
        assert result.returncode == 2 and "another assetfiles run" in result.stderr
        assert not (tmp_path / "a-mirror").exists()
    assert sync(server.base_url, "a-mirror", str(tmp_path))[0] == 0  # released: the next run proceeds


#: What only the server needs: `pip install assetfiles` (the client) comes without these.
SERVER_ONLY = ("sqlalchemy", "starlette", "alembic", "ariadne", "graphql", "granian", "pydantic",
               "pydantic_settings", "cryptography", "prometheus_client", "python_multipart", "multipart",
               "yaml", "psycopg", "aiobotocore", "botocore")  # fmt: skip
CLIENT_ONLY = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Refuse())
from assetfiles.cli import main
main()
"""


def test_the_client_runs_without_the_server_extra(server: Server, tmp_path: Path) -> None:
    """`pip install assetfiles` (no [server]): sync works, server commands say what to install."""
    env = {**os.environ, "ASSETFILES_TOKEN": TOKEN}
    command = [sys.executable, "-c", CLIENT_ONLY, "sync", "--url", server.base_url, "--quiet", "a-mirror",
               str(tmp_path)]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "a-mirror" / "user").is_dir()
    serve = subprocess.run(
        [sys.executable, "-c", CLIENT_ONLY, "serve"], capture_output=True, text=True, timeout=60
    )
    assert serve.returncode == 2 and "pip install 'assetfiles[server]'" in serve.stderr, serve.stderr
