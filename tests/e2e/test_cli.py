"""The command line: apply, token create and upload, with their bad inputs."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from assetfiles.cli.background import free_port
from tests.backends import catalog_text, stored_blobs
from tests.conftest import RO, RW
from tests.helpers import Server, run_cli, write_fixture

SMALL_WORLD: dict[str, Any] = {
    "organizations": [
        {
            "id": "o-small",
            "tokens": [{"name": "generated"}],
            "products": [{"id": "prod1", "devices": [{"id": "dev1"}]}],
            "assets": [
                {
                    "id": "asset-1",
                    "name": "Asset one",
                    "signals": [{"id": "s", "channel": "prod1.dev1.data_in.temp"}],
                    "content": [
                        {"path": "a.txt", "tags": {"k": "v"}},
                        {"path": "log.csv", "created_by": {"device": "prod1.dev1"}},
                    ],
                }
            ],
        }
    ]
}


def test_apply_is_idempotent_and_tracks_changes(workdir: Path) -> None:
    fixture = write_fixture(workdir, SMALL_WORLD, {"a.txt": b"first", "log.csv": b"t\n1\n"})
    data_dir = str(workdir / "data")
    first = run_cli("apply", str(fixture), "--data-dir", data_dir)
    assert first.returncode == 0, first.stderr
    assert "content o-small/asset-1/a.txt created" in first.stdout
    assert "generated secret for token o-small/generated (shown once)" in first.stdout
    assert "generated secret for device o-small/prod1.dev1 (shown once)" in first.stdout
    second = run_cli("apply", str(fixture), "--data-dir", data_dir)
    assert second.returncode == 0, second.stderr
    assert "nothing to change" in second.stdout
    assert "generated secret" not in second.stdout
    (workdir / "a.txt").write_bytes(b"second version")
    third = run_cli("apply", str(fixture), "--data-dir", data_dir)
    assert "content o-small/asset-1/a.txt updated" in third.stdout
    assert len(stored_blobs(workdir / "data")) == 2  # the replaced version's bytes were released


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda w: w["organizations"][0].update(colour="red"), "organizations.0.colour: Extra inputs"),
        (
            lambda w: w["organizations"][0]["assets"][0]["signals"][0].update(channel="prod1.dev1.temp"),
            "signals.0.channel",
        ),
        (lambda w: w["organizations"][0]["products"][0]["devices"][0].update(id="a.b"), "devices.0.id"),
        (lambda w: w["organizations"][0]["tokens"][0].update(permissions=["root"]), "permissions.0"),
        (lambda w: w["organizations"][0]["assets"][0].pop("name"), "assets.0.name: Field required"),
        (
            lambda w: w["organizations"][0]["assets"][0]["content"][0].update(path="missing.txt"),
            "missing.txt",
        ),
        (
            lambda w: w["organizations"][0]["assets"][0]["content"][0].update(
                created_by={"user": "a", "device": "b.c"}
            ),
            "exactly one",
        ),
        (
            lambda w: w["organizations"][0]["assets"][0]["content"][1].update(
                created_by={"device": "prod1.other"}
            ),
            "does not feed asset asset-1",
        ),
        (
            lambda w: w["organizations"][0]["assets"][0]["content"][0].update(enos_category="video"),
            "enos_category",
        ),
    ],
)
def test_apply_rejects_bad_fixtures(workdir: Path, mutate: Any, fragment: str) -> None:
    document = yaml.safe_load(yaml.safe_dump(SMALL_WORLD))
    mutate(document)
    fixture = write_fixture(workdir, document, {"a.txt": b"x", "log.csv": b"y"})
    result = run_cli("apply", str(fixture), "--data-dir", str(workdir / "data"))
    assert result.returncode == 2, result.stdout
    assert fragment in result.stderr


def test_apply_rejects_unreadable_and_invalid_yaml(workdir: Path) -> None:
    missing = run_cli("apply", str(workdir / "nope.yaml"), "--data-dir", str(workdir / "data"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    broken = workdir / "broken.yaml"
    broken.write_text("organizations: [\n")
    result = run_cli("apply", str(broken), "--data-dir", str(workdir / "data"))
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr


def test_token_create_works_against_the_running_server(server: Server) -> None:
    result = run_cli(
        "token", "create", "--org", "o-acme", "--name", "cli-made", "--permission", "read",
        "--data-dir", str(server.data_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert server.data('{ asset(id: "a-pump-7") { id } }', token=secret)["asset"]["id"] == "a-pump-7"
    # Only the hash is stored.
    assert secret not in catalog_text(server.data_dir)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--org", "o-nope", "--name", "x"], "organization 'o-nope' not found"),
        (["--org", "o-acme", "--name", "rw"], "already has a token 'rw'"),
        (["--org", "o-acme", "--name", "x", "--expires-in", "0"], "--expires-in"),
        (["--org", "o-acme", "--name", "x" * 129], "--name"),
        (["--org", "bad org", "--name", "x"], "--org"),
        (["--org", "o-acme", "--name", "x", "--permission", "root"], "--permission"),
        (["--org", "o-acme", "--name", "x", "--secret", "short"], "at least 16"),
        (["--org", "o-acme", "--name", "dup", "--secret", RW], "already in use"),
        (["--name", "x"], "--org"),
    ],
)
def test_token_create_bad_input(server: Server, args: list[str], fragment: str) -> None:
    result = run_cli("token", "create", *args, "--data-dir", str(server.data_dir))
    assert result.returncode == 2
    assert fragment in result.stderr


def test_upload_command(server: Server, workdir: Path) -> None:
    files = [workdir / "one.csv", workdir / "two.bin"]
    files[0].write_bytes(b"a,b\n1,2\n")
    files[1].write_bytes(bytes(range(256)) * 1000)
    result = run_cli(
        "upload", "--url", server.base_url, "--token", RW, "--asset", "a-empty", "--tag", "batch=7",
        *map(str, files),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ids = [line.rsplit(" ", 1)[-1] for line in result.stdout.splitlines() if line.startswith("uploaded")]
    assert len(ids) == 2
    for content_id, path in zip(ids, files, strict=True):
        content = server.data(
            "query($id: ID!) { content(id: $id) { url sha256 tags { name value } } }", {"id": content_id}
        )["content"]
        assert content["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert content["tags"] == [{"name": "batch", "value": "7"}]
        assert httpx.get(content["url"]).content == path.read_bytes()
        server.data("mutation($id: ID!) { deleteContent(id: $id) { id } }", {"id": content_id})


def test_upload_command_failures(server: Server, workdir: Path) -> None:
    path = workdir / "f.txt"
    path.write_text("x")
    base = ["upload", "--url", server.base_url, "--asset", "a-empty", str(path)]
    bad_token = run_cli(*base, "--token", "nope")
    assert bad_token.returncode == 2
    assert "refused the token" in bad_token.stderr
    read_only = run_cli(*base, "--token", RO)  # the token may not upload at all: a setup error
    assert read_only.returncode == 2
    assert "lacks the 'write' permission" in read_only.stderr and "Usage:" not in read_only.stderr
    unknown_asset = run_cli("upload", "--url", server.base_url, "--token", RW, "--asset", "a-zz", str(path))
    assert unknown_asset.returncode == 1
    assert "asset 'a-zz' not found" in unknown_asset.stderr
    unreachable = run_cli(
        "upload", "--url", f"http://127.0.0.1:{free_port()}", "--token", RW, "--asset", "a", str(path)
    )
    assert unreachable.returncode == 2
    assert "cannot reach" in unreachable.stderr and "Usage:" not in unreachable.stderr
    wrong_path = run_cli(
        "upload", "--url", f"{server.base_url}/nowhere", "--token", RW, "--asset", "a", str(path)
    )
    assert wrong_path.returncode == 2
    assert f"no GraphQL API at {server.base_url}/nowhere/api/graphql" in wrong_path.stderr
    bad_tag = run_cli(*base, "--token", RW, "--tag", "novalue")
    assert bad_tag.returncode == 2
    assert "NAME=VALUE" in bad_tag.stderr
    missing_file = run_cli(
        "upload", "--url", server.base_url, "--token", RW, "--asset", "a", str(workdir / "no")
    )
    assert missing_file.returncode == 2
    assert "does not exist" in missing_file.stderr


def test_serve_rejects_bad_settings(workdir: Path) -> None:
    result = run_cli("serve", "--data-dir", str(workdir), "--port", "70000")
    assert result.returncode == 2
    assert "port" in result.stderr
    env_result = run_cli("serve", "--data-dir", str(workdir), env={"ASSETFILES_URL_TTL_SECONDS": "0"})
    assert env_result.returncode == 2
    assert "url_ttl_seconds" in env_result.stderr
    offload = run_cli("serve", "--data-dir", str(workdir), env={"ASSETFILES_ACCEL_REDIRECT_PREFIX": "_blobs"})
    assert offload.returncode == 2
    assert "accel_redirect_prefix" in offload.stderr and "starts and ends with '/'" in offload.stderr


def test_demo_rejects_bad_options(workdir: Path) -> None:
    result = run_cli("demo", "--dir", str(workdir / "demo"), "--port", "70000")
    assert result.returncode == 2 and "--port" in result.stderr
    assert not (workdir / "demo").exists()


def test_token_lifecycle_expiry_revocation_and_last_use(server: Server) -> None:
    """An expired or revoked token answers exactly like one that never existed, on every face."""
    data_dir = str(server.data_dir)
    query = {"query": "{ assetsCount }"}

    def ask(secret: str) -> httpx.Response:
        return httpx.post(server.graphql_url, json=query, headers={"Authorization": f"Automation {secret}"})

    unknown = ask("tok-never-existed-0123456789")
    # A token with an expiry works until then (an hour: however slow the machine, not yet over)...
    later = run_cli("token", "create", "--org", "o-acme", "--name", "expires-later", "--expires-in", "3600",
                    "--data-dir", data_dir)  # fmt: skip
    assert later.returncode == 0, later.stderr
    assert ask(later.stdout.strip().splitlines()[-1]).status_code == 200
    # ...and one whose expiry has passed (1 s, waited out below) answers like no token at all.
    short = run_cli("token", "create", "--org", "o-acme", "--name", "short-lived", "--expires-in", "1",
                    "--data-dir", data_dir)  # fmt: skip
    assert short.returncode == 0, short.stderr
    short_secret = short.stdout.strip().splitlines()[-1]
    kept = run_cli("token", "create", "--org", "o-acme", "--name", "to-revoke", "--data-dir", data_dir)
    kept_secret = kept.stdout.strip().splitlines()[-1]
    assert ask(kept_secret).status_code == 200
    revoked = run_cli("token", "revoke", "--org", "o-acme", "--name", "to-revoke", "--data-dir", data_dir)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert (ask(kept_secret).status_code, ask(kept_secret).json()) == (401, unknown.json())
    again = run_cli("token", "revoke", "--org", "o-acme", "--name", "to-revoke", "--data-dir", data_dir)
    assert again.returncode == 2 and "already revoked" in again.stderr
    time.sleep(1.2)
    assert (ask(short_secret).status_code, ask(short_secret).json()) == (401, unknown.json())
    listed = run_cli("token", "list", "--org", "o-acme", "--json", "--data-dir", data_dir)
    assert listed.returncode == 0, listed.stderr
    tokens = {item["name"]: item for item in map(json.loads, listed.stdout.splitlines())}
    assert tokens["to-revoke"]["state"] == "revoked" and tokens["to-revoke"]["lastUsedAt"]
    assert tokens["short-lived"]["state"] == "expired" and tokens["short-lived"]["expiresAt"]
    assert tokens["rw"]["state"] == "active"
    assert kept_secret not in listed.stdout and short_secret not in listed.stdout
    table = run_cli("token", "list", "--data-dir", data_dir)
    assert "o-acme/to-revoke" in table.stdout and "revoked" in table.stdout
