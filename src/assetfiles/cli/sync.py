"""``assetfiles sync``: mirror assets' content files into a folder.

Exit codes: 0 every file is in place, 1 some files or assets failed (each listed with its
reason), 2 usage error, refused token or unreachable server (nothing could be done).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from assetfiles.cli.clientconfig import config_option
from assetfiles.cli.output import JsonLines, Quiet, print_dry_run, run_and_report
from assetfiles.client import (
    Client,
    Event,
    Fatal,
    Filters,
    Kind,
    Listener,
    Report,
    SyncOptions,
    WatchOptions,
    sync,
)
from assetfiles.client.transfer import MULTI_STREAM_MIN

DRY_RUN_KINDS = {Kind.WOULD_FETCH, Kind.WOULD_MOVE, Kind.WOULD_DELETE}


@dataclass
class _DryRunPrinter:
    """Prints the plan lines of ``--dry-run`` in front of any other listener."""

    inner: Listener

    def event(self, event: Event) -> None:
        if event.kind in DRY_RUN_KINDS:
            print_dry_run(event)
        self.inner.event(event)

    def progress(self, asset: str, path: str, delta: int) -> None:
        self.inner.progress(asset, path, delta)


async def watch_until_signalled(
    url: str,
    token: str,
    asset_ids: Sequence[str] | None,
    destination: Path,
    options: SyncOptions,
    watch: WatchOptions,
    listener: Listener,
) -> Report:
    """``--watch``: run until SIGINT or SIGTERM, then finish the round in progress and report."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: Ctrl-C still interrupts
            loop.add_signal_handler(signum, stop.set)
    async with Client(url, token, concurrency=options.concurrency) as client:
        return await client.watch(asset_ids, destination, stop, options, watch, listener)


def check_writable(directory: Path) -> None:
    """Fail before any request when the destination cannot take files."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".assetfiles-probe-"):
            pass
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write to {directory}: {exc.strerror or exc}", param_hint="DIR"
        ) from None


def parse_tag_filters(values: Sequence[str]) -> tuple[tuple[str, str | None], ...]:
    filters = []
    for value in values:
        name, sep, tag_value = value.partition("=")
        if not name:
            raise click.BadParameter(f"{value!r}: expected NAME or NAME=VALUE", param_hint="--tag")
        filters.append((name, tag_value if sep else None))
    return tuple(filters)


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or date-time", param_hint="--modified-since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def choose_listener(json_lines: bool, quiet: bool, progress: bool | None) -> Listener:
    if json_lines:
        return JsonLines()
    show = sys.stderr.isatty() if progress is None else progress
    if show and not quiet:
        from assetfiles.cli.progress import ProgressBars  # rich, only for a terminal

        return ProgressBars()
    return Quiet()


@click.command("sync")
@config_option()
@click.argument("arguments", nargs=-1, metavar="[ASSET_ID]... DIR")
@click.option("--all", "all_assets", is_flag=True, help="Every asset the token can see.")
@click.option("--url", envvar="ASSETFILES_URL", help="Server base URL. Env: ASSETFILES_URL.")
@click.option("--token", envvar="ASSETFILES_TOKEN", help="API token. Env: ASSETFILES_TOKEN.")
@click.option(
    "--concurrency", type=click.IntRange(1, 256), default=16, show_default=True, help="Parallel downloads."
)
@click.option(
    "--streams",
    type=click.IntRange(1, 32),
    default=4,
    show_default=True,
    help="Ranged streams per file of at least --streams-min bytes (1: one stream per file).",
)
@click.option(
    "--streams-min",
    type=click.IntRange(2 * 1024 * 1024),
    default=MULTI_STREAM_MIN,
    show_default=True,
    help="Size in bytes from which a file is fetched as several streams.",
)
@click.option("--delete", is_flag=True, help="Remove local files whose content is gone from the server.")
@click.option(
    "--dry-run", is_flag=True, help="Print what would be fetched, renamed and deleted; change nothing."
)
@click.option("--content-type", "content_types", multiple=True, help="Only this media type; repeatable.")
@click.option("--tag", "tags", multiple=True, help="Only content with tag NAME (any value) or NAME=VALUE.")
@click.option("--name", "name_glob", help="Only content whose name matches this glob (case-insensitive).")
@click.option("--modified-since", help="Only content modified at or after this ISO 8601 instant.")
@click.option("--json", "json_lines", is_flag=True, help="JSON lines events on stdout, then a summary.")
@click.option("--quiet", "-q", is_flag=True, help="Print only failures.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
@click.option("--watch", is_flag=True, help="Keep the mirror current until SIGINT/SIGTERM (docs/sync.md).")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 86400),
    default=30,
    show_default=True,
    help="--watch without an event feed: seconds between polls (quiet polls stretch it up to 10x).",
)
@click.option("--poll", is_flag=True, help="--watch: poll even where the server has an event feed.")
@click.option(
    "--exec",
    "exec_command",
    help="--watch: run this shell command per downloaded file, with the file in $ASSETFILES_PATH.",
)
def sync_command(
    arguments: tuple[str, ...],
    all_assets: bool,
    url: str | None,
    token: str | None,
    concurrency: int,
    streams: int,
    streams_min: int,
    delete: bool,
    dry_run: bool,
    content_types: tuple[str, ...],
    tags: tuple[str, ...],
    name_glob: str | None,
    modified_since: str | None,
    json_lines: bool,
    quiet: bool,
    progress: bool | None,
    watch: bool,
    interval: float,
    poll: bool,
    exec_command: str | None,
) -> None:
    """Mirror the content files of assets into DIR (one folder per asset; user/ and devices/ inside).

    A second run fetches only what changed; interrupted downloads resume. With --watch the
    mirror is kept current until the command is stopped.
    """
    if not arguments:
        raise click.UsageError("missing DIR")
    *asset_ids, directory_arg = arguments
    if all_assets and asset_ids:
        raise click.UsageError("give asset ids or --all, not both")
    if not all_assets and not asset_ids:
        raise click.UsageError("give at least one ASSET_ID, or --all")
    if not url:
        raise click.UsageError("missing --url (or ASSETFILES_URL, or url in the config file)")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
    if not token:
        raise click.UsageError("missing --token (or ASSETFILES_TOKEN, or token in the config file)")
    if not watch and (poll or exec_command):
        raise click.UsageError("--poll and --exec go with --watch")
    if watch and dry_run:
        raise click.UsageError("--watch and --dry-run do not go together")
    destination = Path(directory_arg)
    filters = Filters(
        content_types=content_types,
        tags=parse_tag_filters(tags),
        name_glob=name_glob,
        modified_since=parse_since(modified_since),
    )
    if not dry_run:
        check_writable(destination)
    options = SyncOptions(
        filters=filters, delete=delete, dry_run=dry_run, concurrency=concurrency, streams=streams,
        multi_stream_min=streams_min,
    )  # fmt: skip
    listener = choose_listener(json_lines, quiet, progress)
    effective: Listener = _DryRunPrinter(listener) if dry_run and not json_lines else listener
    targets = None if all_assets else asset_ids
    watching = WatchOptions(
        interval=interval, max_interval=interval * 10, events=not poll, exec_command=exec_command
    )
    run_and_report(
        lambda: (
            watch_until_signalled(url, token, targets, destination, options, watching, effective)
            if watch
            else sync(url, token, targets, destination, options, effective)
        ),
        listener,
        json_lines=json_lines,
        quiet=quiet,
        fatal=(Fatal,),
    )
