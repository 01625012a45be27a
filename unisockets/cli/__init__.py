"""The ``unisockets`` command line (one entry point, click subcommands).

Each subcommand lives in its own module of this package and is registered
on :data:`main` below.
"""

from __future__ import annotations

from typing import Any

import click

from ._entry import interrupted

__all__ = ["main"]


class _Group(click.Group):
    """Click's group, with Ctrl-C outside trio (e.g. while importing) as in :func:`run_trio`."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; a KeyboardInterrupt exits 130 with one line, not ``Aborted!``."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            interrupted(ctx.invoked_subcommand or "")


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
