"""``assetfiles upload``: send local files to a server as content of an asset."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import click
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from assetfiles.cli.errors import SetupError
from assetfiles.client.graphql import GraphQLClient, GraphQLClientError
from assetfiles.client.resumable import DEFAULT_CHUNK_BYTES, CredentialRefused, ResumableUploader
from assetfiles.client.upload import UploadResult, upload_file


def parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for value in values:
        name, sep, tag_value = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint="--tag")
        tags[name] = tag_value
    return tags


async def _upload_all(
    url: str,
    token: str,
    asset: str,
    files: list[Path],
    tags: dict[str, str],
    show_progress: bool,
    chunk_bytes: int,
    report: Callable[[UploadResult], None],
) -> list[UploadResult]:
    total = sum(path.stat().st_size for path in files)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        overall = progress.add_task("all files", total=total)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client = GraphQLClient(session, url, token)
            await client.execute("{ __typename }")  # fail fast on a bad URL or token, before hashing
            uploader = ResumableUploader(session, url, token, chunk_bytes=chunk_bytes)
            # a server without tus gets createContentUpload and a PUT
            resumable = uploader if await uploader.offered() else None
            results = []
            for path in files:
                # Each file is read twice: once to hash it (its sha256 is declared up front), once
                # to send it. Its bar shows the hashing pass, then restarts for the sending pass.
                task = progress.add_task(f"{path.name} (hashing)", total=path.stat().st_size)
                sent = 0

                def hashing(n: int, task: TaskID = task) -> None:
                    progress.advance(task, n)

                def sending(n: int, task: TaskID = task, name: str = path.name) -> None:
                    nonlocal sent
                    if sent == 0:
                        progress.reset(task, description=name)
                    sent += n
                    progress.advance(task, n)
                    progress.advance(overall, n)

                result = await upload_file(
                    session,
                    client,
                    asset,
                    path,
                    tags=tags,
                    hashing=hashing,
                    sending=sending,
                    resumable=resumable,
                )
                report(result)
                results.append(result)
        return results


@click.command("upload")
@click.option("--asset", required=True, help="Asset id the files are attached to.")
@click.option("--url", envvar="ASSETFILES_URL", required=True, help="Server base URL. Env: ASSETFILES_URL.")
@click.option("--token", envvar="ASSETFILES_TOKEN", required=True, help="API token. Env: ASSETFILES_TOKEN.")
@click.option("--tag", "tags", multiple=True, help="NAME=VALUE tag for every file; repeatable.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=64 * 1024),
    default=DEFAULT_CHUNK_BYTES,
    show_default=True,
    help="Bytes per request of a resumable upload: the most a dropped connection costs.",
)
@click.option(
    "--json", "json_lines", is_flag=True, help="One JSON object per file, then a summary, on stdout."
)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def upload_command(
    asset: str,
    url: str,
    token: str,
    tags: tuple[str, ...],
    progress: bool | None,
    chunk_size: int,
    json_lines: bool,
    files: tuple[Path, ...],
) -> None:
    """Upload FILES as content of an asset (exit 0: all stored, 1: some failed, 2: usage or auth error).

    Through tus when the server offers it: an upload cut off, or a run killed, resumes from where
    the server stands when the same command runs again."""
    show = sys.stderr.isatty() if progress is None else progress

    def report(result: UploadResult) -> None:
        if json_lines:
            fields = {"path": str(result.path), "content": result.content_id, "error": result.error}
            click.echo(json.dumps({"event": "failed" if result.error else "uploaded", **fields}))
        elif result.error:
            click.echo(f"failed   {result.path}: {result.error}", err=True)
        else:
            click.echo(f"uploaded {result.path} as {result.content_id}")

    try:
        results = asyncio.run(
            _upload_all(url, token, asset, list(files), parse_tags(tags), show, chunk_size, report)
        )
    except CredentialRefused as exc:
        raise SetupError(f"the server refused the token: {exc}") from None
    except GraphQLClientError as exc:
        if not exc.graphql:
            raise SetupError(
                f"no GraphQL API at {url.rstrip('/')}/api/graphql ({exc}): check --url"
            ) from None
        raise SetupError(f"the server refused the token: {exc}") from None
    except aiohttp.ClientError as exc:
        raise SetupError(f"cannot reach {url}: {exc}") from None
    failed = sum(1 for result in results if result.error)
    if json_lines:
        click.echo(json.dumps({"event": "summary", "uploaded": len(results) - failed, "failed": failed}))
    sys.exit(1 if failed else 0)
