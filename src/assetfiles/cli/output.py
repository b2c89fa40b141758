"""Rendering a sync's events: JSON lines or a quiet summary (progress bars: cli/progress.py).

Rich is imported only when bars are shown: a cron run does not pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any, NoReturn, TextIO

import click

from assetfiles.client.events import Event, Kind, Listener, Report


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
    listener: Listener,
    *,
    json_lines: bool,
    quiet: bool,
    fatal: tuple[type[Exception], ...],
) -> NoReturn:
    """Run a download command, print its summary and failures, and exit 0, 1 or 2 (``fatal``)."""
    started = time.monotonic()
    try:
        # progress bars are a context (they own the terminal while they run); other listeners are not
        with listener if isinstance(listener, AbstractContextManager) else contextlib.nullcontext():
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
