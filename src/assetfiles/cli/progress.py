"""Rich progress bars for a sync on a terminal."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from assetfiles.client.events import Event, Kind

#: Files at least this large get their own bar under the overall one.
OWN_BAR_BYTES = 8 * 1024 * 1024


class ProgressBars(AbstractContextManager["ProgressBars"]):
    """Overall files and bytes, plus a bar per large file while it transfers."""

    def __init__(self, console: Console | None = None) -> None:
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self.overall: TaskID = self.bars.add_task("planning", total=0)
        self.planned_files = 0
        self.finished_files = 0
        self.large: dict[tuple[str, str], TaskID] = {}

    def __enter__(self) -> ProgressBars:
        self.bars.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.bars.stop()

    def _describe(self) -> None:
        description = f"{self.finished_files}/{self.planned_files} files"
        self.bars.update(self.overall, description=description)

    def event(self, event: Event) -> None:
        if event.kind is Kind.PLANNED:
            self.planned_files += event.files or 0
            task = self.bars.tasks[self.overall]
            self.bars.update(self.overall, total=(task.total or 0) + (event.bytes or 0))
        elif event.kind is Kind.STARTED and (event.bytes or 0) >= OWN_BAR_BYTES and event.path:
            key = (event.asset, event.path)
            self.large[key] = self.bars.add_task(f"  {event.path}", total=event.bytes)
        elif event.kind in (Kind.DOWNLOADED, Kind.FAILED, Kind.GONE):
            self.finished_files += 1
            task_id = self.large.pop((event.asset, event.path or ""), None)
            if task_id is not None:
                self.bars.remove_task(task_id)
            if event.kind is Kind.FAILED:
                self.bars.console.print(f"[red]failed[/red] {event.asset}/{event.path}: {event.reason}")
        elif event.kind is Kind.ASSET_FAILED:
            self.bars.console.print(f"[red]failed[/red] asset {event.asset}: {event.reason}")
        self._describe()

    def progress(self, asset: str, path: str, delta: int) -> None:
        self.bars.advance(self.overall, delta)
        task_id = self.large.get((asset, path))
        if task_id is not None:
            self.bars.advance(task_id, delta)
