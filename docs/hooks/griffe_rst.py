"""A Griffe extension: the reStructuredText in our docstrings, as Markdown for mkdocstrings.

The code base writes Google-style docstrings with Sphinx habits (the project's
style follows trio, h11 and wsproto, which use Sphinx): cross-reference roles such as
``:class:`~unisockets.net.SocketStream```, ``::`` before a literal block, and
the odd RST simple table. mkdocstrings renders docstrings as Markdown, where
those show up as stray colons and backticks. This extension rewrites each
docstring once, before it is parsed:

- ``:class:`X```, ``:func:``, ``:meth:``, ``:data:``, ``:attr:``, ``:mod:``,
  ``:exc:``, ``:obj:``, ``:const:``: ``X`` is resolved the way Sphinx does,
  relative to the object the docstring belongs to (its members, then its
  parents' scopes, following imports). A name that lands in ``unisockets``
  becomes an *optional* autorefs cross-reference (a link when that object is
  rendered on some page, plain code otherwise); any other name (``trio.abc.Stream``,
  ``anyio.EndOfStream``) becomes inline code. ``~`` shows the last component
  only, ``title <target>`` shows the title, and functions and methods get
  ``()`` as Sphinx adds them.
- a paragraph ending in ``::`` ends in ``:`` (its indented block is already
  a Markdown code block).
- an RST simple table (``====`` rules) becomes a Markdown table.

Only the text of the docstrings changes, never the code. Loaded by
``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

__all__ = ["RstToMarkdown", "convert_docstring", "convert_roles", "convert_tables"]

#: The package whose objects are linked; everything else is shown as code.
PACKAGE = "unisockets"

_ROLE = re.compile(
    r":(?P<role>class|func|meth|data|attr|mod|exc|obj|const|py:\w+):`(?P<body>[^`]+)`"
)
_EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
_CALLABLE_ROLES = frozenset({"func", "meth", "py:func", "py:meth"})
_RULE = re.compile(r"^(?P<indent> *)(?P<rule>=+(?: +=+)+) *$")


def _resolve(obj: griffe.Object | None, target: str) -> str | None:
    """The full dotted path ``target`` names in ``obj``'s scope, or ``None``."""
    if target.startswith(PACKAGE + ".") or target == PACKAGE:
        return target
    if obj is None:
        return None
    first, _, rest = target.lstrip(".").partition(".")
    try:
        base = obj.resolve(first)
    except (griffe.NameResolutionError, KeyError, AttributeError):
        return None
    return f"{base}.{rest}" if rest else base


def convert_roles(text: str, obj: griffe.Object | None = None) -> str:
    """Replace Sphinx cross-reference roles with autorefs links or inline code.

    Args:
        text: docstring text.
        obj: the object the docstring belongs to (the scope of relative names);
            ``None`` resolves only names spelled in full (``unisockets.…``).

    Returns:
        The text with every role replaced.
    """

    def replace(match: re.Match[str]) -> str:
        role, body = match["role"], match["body"].strip()
        explicit = _EXPLICIT_TITLE.match(body)
        if explicit:
            title, target = explicit["title"], explicit["target"].strip()
        else:
            target = body.lstrip("!")
            short = target.startswith("~")
            target = target.lstrip("~")
            title = target.rsplit(".", 1)[-1] if short else target
            if role in _CALLABLE_ROLES:
                title += "()"
        path = _resolve(obj, target)
        code = f"<code>{html.escape(title)}</code>"
        if path is None or not (path == PACKAGE or path.startswith(PACKAGE + ".")):
            return f"`{title}`"
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    return _ROLE.sub(replace, text)


def convert_tables(text: str) -> str:
    """Turn RST simple tables into Markdown tables.

    A simple table is a ``===  ===`` rule, a header row, the same rule, body
    rows and a closing rule; the rule's runs of ``=`` give the columns. A
    body line whose first column is blank continues the row above it.

    Args:
        text: docstring text.

    Returns:
        The text with every simple table replaced (other text unchanged).
    """
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        rule = _RULE.match(lines[index])
        rules = _rules_of_table(lines, index) if rule else None
        if rule is None or rules is None:
            out.append(lines[index])
            index += 1
            continue
        middle, closing = rules
        starts = [m.start() for m in re.finditer(r"=+", lines[index])]
        header = _rows(lines[index + 1 : middle], starts)
        body = _rows(lines[middle + 1 : closing], starts)
        if len(header) != 1:
            out.append(lines[index])
            index += 1
            continue
        pad = rule["indent"]
        out.append(pad + _markdown_row(header[0]))
        out.append(pad + "|" + "|".join(" --- " for _ in header[0]) + "|")
        out.extend(pad + _markdown_row(row) for row in body)
        index = closing + 1
    return "\n".join(out)


def _rules_of_table(lines: list[str], start: int) -> tuple[int, int] | None:
    """The indices of the middle and closing rules of a table opening at ``start``."""
    rule = lines[start].strip()
    found = [n for n in range(start + 1, len(lines)) if lines[n].strip() == rule][:2]
    return (found[0], found[1]) if len(found) == 2 else None


def _rows(lines: list[str], starts: list[int]) -> list[list[str]]:
    """Cut lines into cells at the column starts, joining continuation lines."""
    rows: list[list[str]] = []
    for line in lines:
        bounds = [*starts[1:], max(len(line), starts[-1])]
        cells = [line[a:b].strip() for a, b in zip(starts, bounds, strict=True)]
        if not any(cells):
            continue
        if rows and not cells[0]:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return rows


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def convert_docstring(text: str, obj: griffe.Object | None = None) -> str:
    """Apply every conversion of this module to one docstring.

    Args:
        text: the docstring (already dedented, as Griffe stores it).
        obj: the object it documents, for resolving relative names.

    Returns:
        The Markdown text.
    """
    text = convert_tables(text)
    text = re.sub(r"(\S)::$", r"\1:", text, flags=re.MULTILINE)
    return convert_roles(text, obj)


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring of the loaded packages (see the module docstring)."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Convert ``obj``'s docstring in place, once the whole tree is loaded."""
        del loader, kwargs
        if obj.docstring is not None:
            obj.docstring.value = convert_docstring(obj.docstring.value, obj)
