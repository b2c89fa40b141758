"""``assetfiles upload``: send local files to a server as content of an asset."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import click
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from assetfiles.cli.errors import SetupError
from assetfiles.client.graphql import GraphQLClient, GraphQLClientError
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
    url: str, token: str, asset: str, files: list[Path], tags: dict[str, str], show_progress: bool
) -> list[UploadResult]:
    total = sum(path.stat().st_size for path in files)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        overall = progress.add_task("all files", total=total)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client = GraphQLClient(session, url, token)
            await client.execute("{ __typename }")  # fail fast on a bad URL or token, before hashing
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

                results.append(
                    await upload_file(
                        session, client, asset, path, tags=tags, hashing=hashing, sending=sending
                    )
                )
        return results


@click.command("upload")
@click.option("--asset", required=True, help="Asset id the files are attached to.")
@click.option("--url", envvar="ASSETFILES_URL", required=True, help="Server base URL. Env: ASSETFILES_URL.")
@click.option("--token", envvar="ASSETFILES_TOKEN", required=True, help="API token. Env: ASSETFILES_TOKEN.")
@click.option("--tag", "tags", multiple=True, help="NAME=VALUE tag for every file; repeatable.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def upload_command(
    asset: str, url: str, token: str, tags: tuple[str, ...], progress: bool | None, files: tuple[Path, ...]
) -> None:
    """Upload FILES as content of an asset (exit 0: all stored, 1: some failed, 2: usage or auth error)."""
    show = sys.stderr.isatty() if progress is None else progress
    try:
        results = asyncio.run(_upload_all(url, token, asset, list(files), parse_tags(tags), show))
    except GraphQLClientError as exc:
        if not exc.graphql:
            raise SetupError(
                f"no GraphQL API at {url.rstrip('/')}/api/graphql ({exc}): check --url"
            ) from None
        raise SetupError(f"the server refused the token: {exc}") from None
    except aiohttp.ClientError as exc:
        raise SetupError(f"cannot reach {url}: {exc}") from None
    failed = 0
    for result in results:
        if result.error:
            failed += 1
            click.echo(f"failed   {result.path}: {result.error}", err=True)
        else:
            click.echo(f"uploaded {result.path} as {result.content_id}")
    sys.exit(1 if failed else 0)
