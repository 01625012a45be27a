"""The mkdocs hook that fills in generated content (``hooks:`` in mkdocs.yml).

A page asks for generated Markdown with a comment on a line of its own::

    <!-- gen: NAME ARG... -->

and the hook replaces the line with the output of the generator ``NAME``
(:data:`GENERATORS`) before the page is rendered. An unknown name, wrong
arguments or a generator that fails stop the build with the page and the
line, so a page can never silently lose its generated part.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parent))

import docgen_api
import docgen_cli
import docgen_layers
import docgen_limits
import docgen_protocol

__all__ = ["GENERATORS", "expand", "on_page_markdown"]

#: Every generator a page may call, by the name used in ``<!-- gen: NAME -->``.
GENERATORS: dict[str, Callable[..., str]] = {
    "opcode-table": docgen_protocol.opcode_table,
    "message-reference": docgen_protocol.message_reference,
    "sequence": docgen_protocol.sequence_diagram,
    "state-machine": docgen_protocol.state_machine,
    "stream-state-machine": docgen_protocol.stream_state_machine,
    "socket-refusals": docgen_protocol.socket_refusals,
    "socket-options": docgen_protocol.socket_options_table,
    "frame-types": docgen_protocol.frame_types,
    "data-plane-example": docgen_protocol.data_plane_example,
    "exports": docgen_api.exports,
    "modules": docgen_api.modules,
    "cli-help": docgen_cli.cli_help,
    "server-limits": docgen_limits.limits_table,
    "server-limits-summary": docgen_limits.limits_summary,
    "layers": docgen_layers.layers_diagram,
}

_DIRECTIVE = re.compile(r"^<!-- gen: (?P<name>[\w-]+)(?P<args>(?: [^\s>]+)*) -->$", re.MULTILINE)


def expand(markdown: str, where: str = "<page>") -> str:
    """Replace every ``<!-- gen: ... -->`` line of ``markdown`` with generated Markdown.

    Args:
        markdown: the page source.
        where: the page's path, for error messages.

    Returns:
        The page with every directive expanded.

    Raises:
        PluginError: an unknown generator, or a generator that raised.
    """

    def replace(match: re.Match[str]) -> str:
        name, args = match["name"], match["args"].split()
        line = markdown.count("\n", 0, match.start()) + 1
        generator = GENERATORS.get(name)
        if generator is None:
            raise PluginError(f"{where}:{line}: unknown generator {name!r}")
        try:
            return generator(*args).rstrip("\n")
        except Exception as exc:
            raise PluginError(f"{where}:{line}: generator {name} {args} failed: {exc!r}") from exc

    for number, text in enumerate(markdown.split("\n"), start=1):
        if text.lstrip().startswith("<!-- gen:") and not _DIRECTIVE.fullmatch(text):
            raise PluginError(f"{where}:{number}: malformed directive {text.strip()!r}")
    return _DIRECTIVE.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs event: expand the directives of each page before it is rendered."""
    del config, files
    return expand(markdown, page.file.src_uri)
