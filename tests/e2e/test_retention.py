"""Retention policies: what a dry run lists is what the real run deletes; scheduled inside serve."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import run_cli, seed_and_start, write_fixture

TOKEN = "tok-retention-rw-0123456789"


def document(retention: list[dict[str, Any]]) -> dict[str, Any]:
    logs = [{"path": f"files/log-{i}.csv"} for i in range(1, 6)]
    device = [{"path": f"files/dev-{i}.txt", "created_by": {"device": "p1.d1"}} for i in range(1, 4)]
    return {
        "organizations": [
            {
                "id": "o-r",
                "retention": retention,
                "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}],
                "products": [{"id": "p1", "devices": [{"id": "d1", "secret": "d1-secret-0123"}]}],
                "assets": [
                    {"id": "a1", "name": "One", "signals": [{"id": "s", "channel": "p1.d1.data_in.x"}],
                     "content": [*logs, {"path": "files/manual.pdf"}, *device]},
                    {"id": "a2", "name": "Two", "content": [{"path": "files/keep.bin"}]},
                ],
            }
        ]
    }  # fmt: skip


def files() -> dict[str, bytes]:
    names = [f"log-{i}.csv" for i in range(1, 6)] + [f"dev-{i}.txt" for i in range(1, 4)]
    found = {f"files/{name}": f"{name}\n".encode() for name in names}
    return {**found, "files/manual.pdf": b"%PDF-1.4\n", "files/keep.bin": b"\x00keep"}


POLICIES = [
    {"asset": "a1", "name_prefix": "log-", "keep_per_asset": 2},
    {"content_type": "text/plain", "delete_after_days": 0},
]


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def test_dry_run_lists_exactly_what_the_real_run_deletes(tmp_path: Path) -> None:
    fixture = write_fixture(tmp_path, document(POLICIES), files())
    data_dir = str(tmp_path / "data")
    applied = run_cli("apply", str(fixture), "--data-dir", data_dir)
    assert applied.returncode == 0, applied.stderr
    shown = lines(run_cli("retention", "show", "--data-dir", data_dir).stdout)
    assert [p["keepPerAsset"] for p in shown] == [2, None] and shown[1]["contentType"] == "text/plain"
    before = lines(run_cli("usage", "--org", "o-r", "--json", "--data-dir", data_dir).stdout)[0]
    planned = lines(run_cli("retention", "apply", "--dry-run", "--json", "--data-dir", data_dir).stdout)
    assert sorted(item["name"] for item in planned) == [
        "dev-1.txt", "dev-2.txt", "dev-3.txt", "log-1.csv", "log-2.csv", "log-3.csv",
    ]  # fmt: skip
    assert all(not item["deleted"] for item in planned)
    ran = lines(run_cli("retention", "apply", "--json", "--data-dir", data_dir).stdout)
    assert [(i["id"], i["reason"]) for i in ran] == [(i["id"], i["reason"]) for i in planned]
    assert all(item["deleted"] for item in ran)
    after = lines(run_cli("usage", "--org", "o-r", "--json", "--data-dir", data_dir).stdout)[0]
    assert after["contentCount"] == before["contentCount"] - 6
    assert run_cli("retention", "apply", "--dry-run", "--json", "--data-dir", data_dir).stdout == ""
    audit = lines(run_cli("audit", "--org", "o-r", "--json", "--data-dir", data_dir).stdout)
    deletions = [e for e in audit if e["action"] == "content.deleted"]
    assert sorted(e["target"] for e in deletions) == sorted(i["id"] for i in ran)
    assert {(e["face"], e["actor"]) for e in deletions} == {("retention", "retention")}
    fsck = run_cli("fsck", "--data-dir", data_dir)
    assert fsck.returncode == 0, fsck.stdout


def test_bad_policies_are_refused_by_name(tmp_path: Path) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"asset": "a1"}, "delete_after_days, keep_per_asset"),
        ({"delete_after_days": -1}, "delete_after_days"),
        ({"content_type": "pdf", "delete_after_days": 1}, "content_type"),
        ({"keep_per_asset": 1, "forever": True}, "forever"),
    ]
    for policy, fragment in cases:
        fixture = write_fixture(tmp_path / str(abs(hash(fragment))), document([policy]), files())
        result = run_cli("apply", str(fixture), "--data-dir", str(tmp_path / "d"))
        assert result.returncode == 2 and fragment in result.stderr, (policy, result.stderr)


def test_serve_applies_policies_on_its_schedule(tmp_path: Path) -> None:
    policy = [{"content_type": "text/plain", "delete_after_days": 0}]
    running = seed_and_start(
        tmp_path, document(policy), files(), {"ASSETFILES_RETENTION_INTERVAL_SECONDS": "1"}
    )
    try:
        query = """{ assetContents(filters: {association: {type: "asset", id: "a1"}},
                                   devices: [{product_id: "p1", device_id: "d1"}]) { totalCount } }"""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if running.data(query, token=TOKEN)["assetContents"]["totalCount"] == 0:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the scheduled run did not delete the device's text files")
        kept = httpx.post(running.graphql_url, headers={"Authorization": f"Automation {TOKEN}"},
                          json={"query": '{ assetContents(filters: {association: {type: "asset", id: "a1"}}) '
                                         "{ totalCount } }"})  # fmt: skip
        assert kept.json()["data"]["assetContents"]["totalCount"] == 6  # the CSVs and the PDF
    finally:
        running.stop()
