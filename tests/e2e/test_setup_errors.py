"""Setup mistakes are refused at once with one clear line and exit 2, never half-served or hidden:
a second server on a busy port, and read or admin commands on a data directory that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends import BACKEND
from tests.helpers import Server, run_cli, start_server


def test_serve_refuses_a_port_another_server_listens_on(tmp_path: Path) -> None:
    first = start_server(tmp_path / "first")
    try:
        port = first.base_url.rsplit(":", 1)[1]
        second = run_cli("serve", "--port", port, "--data-dir", str(tmp_path / "second"))
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"port {port} on 127.0.0.1 is in use" in second.stderr
        assert first.get(f"{first.base_url}/healthz").status_code == 200  # the first one is untouched
        demo = run_cli("demo", "--serve", "--port", port, "--dir", str(tmp_path / "demo"))
        assert demo.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in demo.stderr
        assert not (tmp_path / "demo").exists()  # refused before it seeded anything
    finally:
        first.stop()


@pytest.mark.skipif(BACKEND != "sqlite", reason="the embedded catalog's file is what is missing")
@pytest.mark.parametrize(
    "command",
    [
        ["token", "list"],
        ["token", "revoke", "--org", "o", "--name", "n"],
        ["audit"],
        ["usage"],
        ["quota", "clear", "--org", "o"],
        ["retention", "show"],
        ["fsck"],
        ["gc"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_read_and_admin_commands_refuse_a_data_directory_that_is_not_there(
    tmp_path: Path, command: list[str]
) -> None:
    mistyped = tmp_path / "assetfiles-dta"
    answer = run_cli(*command, "--data-dir", str(mistyped))
    assert answer.returncode == 2, answer.stdout + answer.stderr
    assert f"no assetfiles data in {mistyped}" in answer.stderr
    assert not mistyped.exists()


def test_a_data_directory_with_a_catalog_is_accepted(server: Server) -> None:
    listed = run_cli("token", "list", "--data-dir", str(server.data_dir))
    assert listed.returncode == 0, listed.stderr
    assert "rw" in listed.stdout
