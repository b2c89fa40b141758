"""``assetfiles gc`` and ``assetfiles fsck`` on a real data directory."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from tests.backends import local_blobs_only
from tests.helpers import run_cli, write_fixture

pytestmark = local_blobs_only

FILES = {
    "files/a.bin": b"a" * 5000,
    "files/b.bin": b"b" * 6000,
    "files/c.bin": b"c" * 7000,
    "files/d.bin": b"d",
}


def seeded(tmp_path: Path) -> Path:
    document = {"organizations": [{"id": "o-m", "assets": [{"id": "a", "name": "A", "content": [
        {"path": name} for name in FILES]}]}]}  # fmt: skip
    fixture = write_fixture(tmp_path, document, FILES)
    data_dir = tmp_path / "data"
    assert run_cli("apply", str(fixture), "--data-dir", str(data_dir)).returncode == 0
    return data_dir


def blob(data_dir: Path, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return data_dir / "blobs" / digest[:2] / digest[2:4] / digest


def plant(data_dir: Path, data: bytes, age_seconds: float) -> Path:
    path = blob(data_dir, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    moment = time.time() - age_seconds
    os.utime(path, (moment, moment))
    return path


def test_gc_removes_old_orphans_only(tmp_path: Path) -> None:
    data_dir = seeded(tmp_path)
    old = plant(data_dir, b"orphan from a crash", 7200)
    young = plant(data_dir, b"an upload in flight", 10)
    stale = data_dir / "blobs" / "tmp" / "dead.part"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    dry = run_cli("gc", "--data-dir", str(data_dir), "--dry-run")
    assert dry.returncode == 0 and f"would remove {old.name}" in dry.stdout and young.name not in dry.stdout
    assert old.exists() and stale.exists()
    result = run_cli("gc", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert "6 blob(s) examined, 1 removed" in result.stdout and "1 stale temporary" in result.stdout
    assert not old.exists() and young.exists() and not stale.exists()
    assert all(blob(data_dir, data).exists() for data in FILES.values())
    assert run_cli("fsck", "--data-dir", str(data_dir), "--verify").returncode == 0


def test_fsck_reports_missing_short_and_corrupt_bytes(tmp_path: Path) -> None:
    data_dir = seeded(tmp_path)
    clean = run_cli("fsck", "--data-dir", str(data_dir), "--verify")
    assert clean.returncode == 0 and "4 content(s), 4 blob(s) checked" in clean.stdout, clean.stdout
    blob(data_dir, FILES["files/a.bin"]).unlink()
    blob(data_dir, FILES["files/b.bin"]).write_bytes(b"b" * 10)
    blob(data_dir, FILES["files/c.bin"]).write_bytes(b"C" * 7000)  # same length, other bytes
    quick = run_cli("fsck", "--data-dir", str(data_dir))
    assert quick.returncode == 1
    assert (
        "missing" in quick.stdout and "length" in quick.stdout and "sha256" not in quick.stdout.split(":")[0]
    )
    full = run_cli("fsck", "--data-dir", str(data_dir), "--verify", "--json")
    assert full.returncode == 1
    lines = [json.loads(line) for line in full.stdout.splitlines()]
    assert sorted(line["name"] + ":" + line["problem"] for line in lines[:-1]) == [
        "a.bin:missing", "b.bin:length", "c.bin:sha256",
    ]  # fmt: skip
    assert lines[-1]["summary"]["problems"] == 3


def test_gc_and_fsck_bad_input(tmp_path: Path) -> None:
    negative = run_cli("gc", "--grace", "-1", "--data-dir", str(tmp_path))
    assert negative.returncode == 2 and "'--grace': -1.0 is not in the range" in negative.stderr
    unknown = run_cli("fsck", "--bogus")
    assert unknown.returncode == 2 and "No such option '--bogus'" in unknown.stderr


def test_gc_removes_abandoned_enos_upload_spools(tmp_path: Path) -> None:
    """A killed server leaves the multipart bodies it was spooling; gc takes the old ones."""
    data_dir = seeded(tmp_path)
    spool_root = data_dir / "tmp"
    spool_root.mkdir(exist_ok=True)
    abandoned = spool_root / "enos-upload-abandoned"
    abandoned.mkdir()
    (abandoned / "part-1").write_bytes(b"x" * 4096)
    os.utime(abandoned, (time.time() - 7200, time.time() - 7200))
    in_flight = spool_root / "enos-upload-inflight"
    in_flight.mkdir()
    unrelated = spool_root / "keep-me"
    unrelated.mkdir()
    os.utime(unrelated, (time.time() - 7200, time.time() - 7200))
    dry = run_cli("gc", "--data-dir", str(data_dir), "--dry-run")
    assert dry.returncode == 0 and abandoned.exists()
    result = run_cli("gc", "--data-dir", str(data_dir))
    assert result.returncode == 0 and "1 abandoned EnOS upload spool(s) removed" in result.stdout, (
        result.stdout
    )
    assert not abandoned.exists() and in_flight.exists() and unrelated.exists()
