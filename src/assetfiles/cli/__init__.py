"""The ``assetfiles`` command line.

Commands are imported when they run, not when the program starts: ``sync`` from cron on
thousands of assets should not pay for importing the server, SQLAlchemy and Alembic.
"""

from __future__ import annotations

import importlib

import click

#: command name -> (module, attribute, one-line help shown by ``assetfiles --help``)
COMMANDS = {
    "serve": (
        "assetfiles.cli.serve",
        "serve_command",
        "Serve the GraphQL API, signed transfers and uploads.",
    ),
    "apply": ("assetfiles.cli.admin", "apply_command", "Create or update what a fixture file describes."),
    "token": ("assetfiles.cli.admin", "token_group", "Manage API tokens."),
    "device": ("assetfiles.cli.devices", "device_group", "List and revoke the sessions devices hold."),
    "gc": ("assetfiles.cli.maintenance", "gc_command", "Remove blobs no content uses."),
    "fsck": (
        "assetfiles.cli.maintenance",
        "fsck_command",
        "Report contents whose bytes are missing or corrupt.",
    ),
    "upload": ("assetfiles.cli.upload", "upload_command", "Upload files as content of an asset."),
    "sync": ("assetfiles.cli.sync", "sync_command", "Mirror the content files of assets into a folder."),
    "enos": ("assetfiles.cli.enos", "enos_group", "Download EnOS files by URI (token service + files API)."),
    "demo": ("assetfiles.cli.demo", "demo_command", "Seed the demo, serve it, and sync the demo asset."),
    "config": ("assetfiles.cli.operations", "config_group", "Show the effective settings, or all of them."),
    "migrate": ("assetfiles.cli.operations", "migrate_command", "Bring the catalog schema up to date."),
    "audit": ("assetfiles.cli.audit", "audit_command", "Read the audit log."),
    "backup": ("assetfiles.cli.operations", "backup_command", "Back up the embedded catalog and blobs."),
    "quota": ("assetfiles.cli.quota", "quota_group", "Set or clear an organization's storage quota."),
    "retention": ("assetfiles.cli.retention", "retention_group", "Show or apply retention policies."),
    "usage": ("assetfiles.cli.quota", "usage_command", "What each organization stores, against its quota."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        try:
            command: click.Command = getattr(importlib.import_module(module), attribute)
        except ModuleNotFoundError as exc:
            # `pip install assetfiles` is the client alone; the server is the [server] extra.
            raise click.UsageError(
                f"'assetfiles {cmd_name}' needs {exc.name}, which comes with the server: "
                "pip install 'assetfiles[server]'"
            ) from None
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="assetfiles")
def main() -> None:
    """Store and serve the files of IoT assets and devices (ExoSense GraphQL, EnOS file API)."""
