"""Rendering a sync's events: rich progress bars on a terminal, JSON lines, or a quiet summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, NoReturn, TextIO

import click
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

from assetfiles.client.events import Event, Kind, Listener, Report

#: Files at least this large get their own bar under the overall one.
OWN_BAR_BYTES = 8 * 1024 * 1024


class ProgressBars:
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


class JsonLines:
    """One JSON object per event on stdout (byte progress is left out: it is too chatty)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def event(self, event: Event) -> None:
        fields = event.as_json()
        fields.pop("kind")
        self.stream.write(json.dumps({"event": str(event.kind), **fields}) + "\n")
        self.stream.flush()

    def progress(self, asset: str, path: str, delta: int) -> None:
        pass


class Quiet:
    """For logs and cron: nothing per file; the summary lists the failures at the end."""

    def event(self, event: Event) -> None:
        pass

    def progress(self, asset: str, path: str, delta: int) -> None:
        pass


def print_dry_run(event: Event) -> None:
    if event.kind is Kind.WOULD_FETCH:
        click.echo(f"fetch  {event.asset}/{event.path} ({event.bytes} bytes, {event.reason})")
    elif event.kind is Kind.WOULD_MOVE:
        click.echo(f"move   {event.asset}/{event.reason} -> {event.path}")
    elif event.kind is Kind.WOULD_DELETE:
        click.echo(f"delete {event.asset}/{event.path}")


def summary_line(report: Report, seconds: float) -> str:
    mib = report.received_bytes / 2**20
    rate = mib / seconds if seconds > 0 else 0.0
    parts = [
        f"{report.assets} asset(s)",
        f"{report.downloaded} downloaded ({mib:,.1f} MiB, {rate:,.1f} MiB/s)",
        f"{report.unchanged} unchanged",
    ]
    for count, label in ((report.moved, "renamed"), (report.deleted, "deleted"), (report.gone, "gone")):
        if count:
            parts.append(f"{count} {label}")
    parts.append(f"{len(report.failures)} failed")
    return ", ".join(parts) + f" in {seconds:,.1f} s"


def run_and_report(
    run: Callable[[], Coroutine[Any, Any, Report]],
    listener: ProgressBars | Listener,
    *,
    json_lines: bool,
    quiet: bool,
    fatal: tuple[type[Exception], ...],
) -> NoReturn:
    """Run a download command, print its summary and failures, and exit 0, 1 or 2 (``fatal``)."""
    started = time.monotonic()
    try:
        with listener if isinstance(listener, ProgressBars) else contextlib.nullcontext():
            report = asyncio.run(run())
    except fatal as exc:
        if json_lines:
            click.echo(json.dumps({"event": "error", "reason": str(exc)}))
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    elapsed = time.monotonic() - started
    if json_lines:
        click.echo(json.dumps({"event": "summary", **report.as_json(), "seconds": round(elapsed, 3)}))
    elif not quiet or report.failures:
        click.echo(summary_line(report, elapsed))
        for failure in report.failures:
            where = f"{failure.asset}/{failure.path}" if failure.path else f"asset {failure.asset}"
            click.echo(f"  failed {where}: {failure.reason}", err=True)
    sys.exit(0 if report.ok else 1)
