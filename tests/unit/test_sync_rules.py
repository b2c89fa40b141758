"""The sync client's pure parts: names, plans, manifests, header parsing."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assetfiles.client.exosense import channel_device
from assetfiles.client.manifest import Manifest
from assetfiles.client.naming import assign_paths, safe_component
from assetfiles.client.plan import Filters, Reason, entry_for, make_plan
from assetfiles.client.remote import Origin, RemoteFile
from assetfiles.client.responses import repr_digest_sha256
from assetfiles.client.retry import retry_after_seconds


def remote(content_id: str, name: str, **kw: object) -> RemoteFile:
    fields: dict[str, object] = {
        "origin": Origin.USER, "length": 10, "last_modified": "2026-11-01T00:00:00.000Z", "sha256": None,
    }  # fmt: skip
    fields.update(kw)
    return RemoteFile(content_id, name, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../x", ".._x"),
        ("/etc/passwd", "_etc_passwd"),
        ("..", "_"),
        ("...", "_"),
        ("", "_"),
        ("CON", "CON_"),
        ("con.txt", "con_.txt"),
        ("LPT1.tar.gz", "LPT1_.tar.gz"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ('a<b>c:d"e|f?g*h', "a_b_c_d_e_f_g_h"),
        ("trailing. ", "trailing"),
        ("tab\there", "tab_here"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9"),  # NFC
    ],
)
def test_safe_component(name: str, safe: str) -> None:
    assert safe_component(name) == safe


def test_long_names_fit_in_255_bytes_and_keep_their_extension() -> None:
    name = safe_component("ü" * 300 + ".csv")
    assert len(name.encode()) <= 255 and name.endswith(".csv")
    name.encode().decode()  # whole characters only


def test_collisions_are_resolved_by_id_whatever_the_order() -> None:
    files = [remote("b2", "Report.pdf"), remote("a1", "report.pdf"), remote("c3", "report.pdf")]
    paths = assign_paths(files)
    assert paths == assign_paths(list(reversed(files)))
    assert paths["a1"] == "user/report.pdf"
    assert paths["b2"] == "user/Report (b2).pdf"
    assert paths["c3"] == "user/report (c3).pdf"
    device = remote("d4", "report.pdf", origin=Origin.DEVICE, device="p1.d1")
    assert assign_paths([*files, device])["d4"] == "devices/p1.d1/report.pdf"


def test_a_rename_cannot_collide_with_a_real_name() -> None:
    files = [remote("a1", "x.txt"), remote("b2", "x.txt"), remote("c3", "x (b2).txt")]
    paths = assign_paths(files)
    assert len(set(paths.values())) == 3


def test_plan_new_changed_missing_moved_deleted(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path, "a")
    for item in (
        remote("1", "keep.txt"),
        remote("2", "old.txt"),
        remote("3", "gone.txt"),
        remote("4", "lost.txt"),
    ):
        path = f"user/{item.name}"
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"0123456789")
        manifest.entries[item.id] = entry_for(item, path)
    (tmp_path / "user/lost.txt").unlink()
    listing = [
        remote("1", "keep.txt"),
        remote("2", "old.txt", last_modified="2026-11-02T00:00:00.000Z", length=11),
        remote("4", "lost.txt"),
        remote("5", "new.txt"),
        remote("6", "KEEP.txt"),  # takes nothing from "1" (a lower id keeps the plain name)
    ]
    plan = make_plan("a", tmp_path, listing, manifest, Filters(), delete=True)
    assert {(d.remote.id, d.reason) for d in plan.downloads} == {
        ("2", Reason.CHANGED), ("4", Reason.MISSING), ("5", Reason.NEW), ("6", Reason.NEW),
    }  # fmt: skip
    assert [(d.content_id, d.path) for d in plan.deletes] == [("3", "user/gone.txt")]
    assert plan.unchanged == 1 and not plan.moves
    without_delete = make_plan("a", tmp_path, listing, manifest, Filters(), delete=False)
    assert without_delete.deletes == []


def test_same_sha256_with_new_metadata_only_refreshes_the_manifest(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path, "a")
    (tmp_path / "user").mkdir()
    (tmp_path / "user/x.txt").write_bytes(b"0123456789")
    manifest.entries["1"] = entry_for(remote("1", "x.txt", sha256="ab" * 32), "user/x.txt")
    retagged = remote("1", "x.txt", sha256="ab" * 32, last_modified="2026-11-05T00:00:00.000Z")
    plan = make_plan("a", tmp_path, [retagged], manifest, Filters(), delete=False)
    assert plan.downloads == [] and plan.refreshed == [(retagged, "user/x.txt")]


def test_filters() -> None:
    item = remote("1", "Log-1.CSV", tags={"kind": "log"}, content_type="text/csv")
    assert Filters(name_glob="*.csv").accepts(item)
    assert Filters(tags=(("kind", None),)).accepts(item)
    assert not Filters(tags=(("kind", "manual"),)).accepts(item)
    assert not Filters(content_types=("application/pdf",)).accepts(item)
    assert Filters(modified_since=datetime(2026, 10, 1, tzinfo=UTC)).accepts(item)
    assert not Filters(modified_since=datetime(2026, 12, 1, tzinfo=UTC)).accepts(item)


def test_manifest_roundtrip_and_corrupt_file(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path, "a")
    manifest.entries["1"] = entry_for(remote("1", "x.txt"), "user/x.txt", sha256="cd" * 32)
    manifest.save()
    assert Manifest.load(tmp_path, "a").entries == manifest.entries
    manifest.path.write_text("{not json")
    assert Manifest.load(tmp_path, "a").entries == {}
    assert manifest.path.with_suffix(".json.corrupt").exists()


def test_header_parsing() -> None:
    digest = hashlib.sha256(b"x").digest()
    assert (
        repr_digest_sha256(f"sha-512=:AAAA:, sha-256=:{base64.b64encode(digest).decode()}:") == digest.hex()
    )
    assert repr_digest_sha256("sha-256=:!!:") is None
    assert repr_digest_sha256(None) is None
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert channel_device("p1.d1.data_in.temp") == "p1.d1"
    assert channel_device("nonsense") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fdp\u202eexe.pdf", "fdp_exe.pdf"),  # right-to-left override: shows as "fdpfdp.exe"-like spoofs
        ("report\u2066.pdf\u2069.exe", "report_.pdf_.exe"),  # isolates
        ("a\u200bb.txt", "a_b.txt"),  # zero-width space
        ("\ufeffbom.csv", "_bom.csv"),  # byte-order mark
        ("join\u200d\u200c.txt", "join__.txt"),  # zero-width joiners
        ("résumé.pdf", "résumé.pdf"),  # ordinary non-ASCII stays
    ],
)
def test_invisible_and_direction_characters_are_mapped(name: str, expected: str) -> None:
    assert safe_component(name) == expected
