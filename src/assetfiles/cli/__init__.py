"""The ``assetfiles`` command line."""

from __future__ import annotations

import click

from assetfiles.cli.admin import apply_command, token_group
from assetfiles.cli.demo import demo_command
from assetfiles.cli.serve import serve_command
from assetfiles.cli.sync import sync_command
from assetfiles.cli.upload import upload_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="assetfiles")
def main() -> None:
    """Store and serve the files of IoT assets and devices (ExoSense GraphQL, EnOS file API)."""


main.add_command(serve_command)
main.add_command(apply_command)
main.add_command(token_group)
main.add_command(upload_command)
main.add_command(demo_command)
main.add_command(sync_command)
