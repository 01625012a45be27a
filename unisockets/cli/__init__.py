"""The ``unisockets`` command line (one entry point, click subcommands).

Each subcommand lives in its own module of this package and is registered
on :data:`main` below.
"""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="unisockets")
def main() -> None:
    """unisockets: Berkeley sockets over WebRTC data channels."""


# Subcommands register themselves here, one import each.
from .demo import demo  # noqa: E402
from .echo import echo_client, echo_server  # noqa: E402
from .run import run  # noqa: E402
from .signaling_server import signaling_server  # noqa: E402

main.add_command(demo)
main.add_command(echo_server)
main.add_command(echo_client)
main.add_command(run)
main.add_command(signaling_server)
