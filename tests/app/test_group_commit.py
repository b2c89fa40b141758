"""Group commit (store/group_commit.py) on a real SQLite file: writes that arrive together share a
transaction, each is durable when its caller resumes, and one write's error stays its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from assetfiles.store import group_commit
from assetfiles.store.group_commit import GroupCommit

_METADATA = MetaData()
_ROWS = Table("rows", _METADATA, Column("name", String, primary_key=True), Column("n", Integer))


class RecordingWriter:
    """Inserts one row per write and returns its name upper-cased; remembers each call's size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, conn: Connection, names: Sequence[str]) -> list[str]:
        self.calls.append(len(names))
        conn.execute(insert(_ROWS), [{"name": name, "n": len(name)} for name in names])
        return [name.upper() for name in names]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    _METADATA.create_all(engine)
    return engine


def _names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(_ROWS.c.name)))


def test_writes_that_arrive_together_share_one_call_and_each_gets_its_result(engine: Engine) -> None:
    writes = GroupCommit(engine)
    writer = RecordingWriter()

    async def scenario() -> list[str]:
        return await asyncio.gather(*(writes.submit(writer, f"w{index}") for index in range(20)))

    assert asyncio.run(scenario()) == [f"W{index}" for index in range(20)]
    assert writer.calls == [20]
    assert _names(engine) == {f"w{index}" for index in range(20)}


def test_a_write_is_committed_when_its_caller_resumes(engine: Engine) -> None:
    writes = GroupCommit(engine)

    async def scenario() -> None:
        for name in ("a", "b", "c"):
            await writes.submit(RecordingWriter(), name)
            assert name in _names(engine)  # another connection sees it at once

    asyncio.run(scenario())


def test_one_failing_write_fails_alone_and_the_others_commit(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(_ROWS).values(name="taken", n=0))
    writes = GroupCommit(engine)
    writer = RecordingWriter()

    async def scenario() -> list[str | BaseException]:
        names = ["x", "taken", "y", "z"]
        return await asyncio.gather(*(writes.submit(writer, name) for name in names), return_exceptions=True)

    first, second, third, fourth = asyncio.run(scenario())
    assert (first, third, fourth) == ("X", "Y", "Z")
    assert isinstance(second, IntegrityError)
    assert writer.calls == [4, 1, 1, 1, 1]  # the group, rolled back; then each alone
    assert _names(engine) == {"taken", "x", "y", "z"}


def test_different_writers_share_the_transaction(engine: Engine) -> None:
    writes = GroupCommit(engine)
    one, other = RecordingWriter(), RecordingWriter()

    async def scenario() -> None:
        await asyncio.gather(writes.submit(one, "a"), writes.submit(other, "b"), writes.submit(one, "c"))

    asyncio.run(scenario())
    assert (one.calls, other.calls) == ([2], [1])
    assert _names(engine) == {"a", "b", "c"}


def test_a_transaction_holds_a_bounded_number_of_writes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(group_commit, "MOST_PER_TRANSACTION", 8)
    writes = GroupCommit(engine)
    writer = RecordingWriter()

    async def scenario() -> None:
        await asyncio.gather(*(writes.submit(writer, f"w{index}") for index in range(20)))

    asyncio.run(scenario())
    assert writer.calls == [8, 8, 4]
    assert len(_names(engine)) == 20


def test_a_cancelled_caller_waits_for_its_write_to_be_committed(engine: Engine) -> None:
    writes = GroupCommit(engine)

    async def scenario() -> None:
        task = asyncio.ensure_future(writes.submit(RecordingWriter(), "kept"))
        await asyncio.sleep(0)  # submitted
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "kept" in _names(engine)  # committed before the cancellation reached the caller

    asyncio.run(scenario())


def test_the_group_commit_serves_one_event_loop_after_another(engine: Engine) -> None:
    """The CLI and tests run several event loops in turn over the same stores."""
    writes = GroupCommit(engine)
    for name in ("first", "second"):
        assert asyncio.run(writes.submit(RecordingWriter(), name)) == name.upper()
    assert _names(engine) == {"first", "second"}
