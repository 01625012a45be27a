"""Markdown for command-line help, generated from the click commands at build time."""

from __future__ import annotations

from click.testing import CliRunner

from unisockets.cli import main

__all__ = ["cli_help"]


def cli_help(*command: str) -> str:
    """The ``--help`` text of ``unisockets COMMAND...`` as a fenced ``text`` block.

    Args:
        command: the subcommand words, e.g. ``"signaling-server"``; none for the group.

    Returns:
        A fenced block holding exactly what ``unisockets COMMAND --help`` prints
        (88 columns wide).

    Raises:
        RuntimeError: the command does not exist or its help failed.
    """
    result = CliRunner().invoke(
        main, [*command, "--help"], prog_name="unisockets", terminal_width=88
    )
    if result.exit_code != 0:
        raise RuntimeError(f"unisockets {' '.join(command)} --help failed: {result.output}")
    return f"```text\n$ unisockets {' '.join([*command, '--help'])}\n{result.output}```\n"
