"""Markdown for the API reference pages, generated from the packages at build time.

- :func:`exports` lists a package's ``__all__`` with where each name is
  defined. Each name is a plain autorefs cross-reference to its canonical
  path, so ``mkdocs build --strict`` fails if a public name is exported but
  documented on no page.
- :func:`modules` emits one mkdocstrings ``::: module`` block per public
  submodule of a package, in a preferred order then alphabetically, so a new
  module shows up in the reference without anyone editing a page.

Objects are read with Griffe (static analysis, the same view mkdocstrings
has); nothing is imported.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from pathlib import Path

import griffe
from griffe_rst import RstToMarkdown

__all__ = ["exports", "load", "modules"]

#: The project root (this file is docs/hooks/docgen_api.py).
ROOT = Path(__file__).resolve().parents[2]


@cache
def load(package: str) -> griffe.Module:
    """The package as Griffe sees it (cached for the build).

    Args:
        package: a top-level package name, e.g. ``"unisockets"``.

    Returns:
        The loaded package, its aliases resolved where they point inside it.
    """
    extensions = griffe.load_extensions("griffe_sphinx", RstToMarkdown())
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)], extensions=extensions)
    module = loader.load(package)
    loader.resolve_aliases(implicit=False, external=False)
    assert isinstance(module, griffe.Module)
    return module


def _find(path: str) -> griffe.Object | griffe.Alias:
    top = path.split(".", 1)[0]
    root = load(top)
    if path == top:
        return root
    return root[path.split(".", 1)[1]]


def _summary(obj: griffe.Object | griffe.Alias) -> str:
    try:
        docstring = obj.docstring
    except griffe.AliasResolutionError:
        return ""
    if docstring is None:
        return ""
    first = docstring.value.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("|", "\\|")


def _kind(obj: griffe.Object | griffe.Alias) -> str:
    try:
        return obj.kind.value
    except griffe.AliasResolutionError:
        return "?"


def exports(package: str) -> str:
    """A table of the names ``package`` exports (its ``__all__``).

    Args:
        package: a dotted package name, e.g. ``"unisockets.net"``.

    Returns:
        A Markdown table: name (linked to its documentation), kind, defined in,
        summary. A package without ``__all__`` gets a sentence saying so.

    Raises:
        RuntimeError: a name in ``__all__`` is defined nowhere in the package.
    """
    module = _find(package)
    names = module.exports
    if not names:
        return f"`{package}` has no `__all__`: it re-exports no names of its own.\n"
    rows = ["| name | kind | defined in | summary |", "| --- | --- | --- | --- |"]
    for name in names:
        if name in module.members and not module.members[name].is_alias:
            # Defined in the package itself (e.g. __version__): shown here, not linked.
            member = module.members[name]
            value = getattr(member, "value", None)
            summary = _summary(member) or (f"`{value}`" if value is not None else "")
            rows.append(f"| `{name}` | {_kind(member)} | `{package}` | {summary} |")
            continue
        if name in module.members:
            member = module.members[name]
            try:
                target = member.final_target.path  # through re-exports of re-exports
            except griffe.AliasResolutionError:
                target = member.target_path
            kind, summary = _kind(member), _summary(member)
        else:  # exported lazily (a module __getattr__): ask the running code
            target = _runtime_path(package, name)
            kind, summary = _kind(_find(target)), _summary(_find(target))
        defined_in = target.rsplit(".", 1)[0]
        rows.append(f"| [`{name}`][{target}] | {kind} | `{defined_in}` | {summary} |")
    return "\n".join(rows) + "\n"


def _runtime_path(package: str, name: str) -> str:
    """Where ``package.name`` is defined, found by importing it (for lazy exports)."""
    value = getattr(importlib.import_module(package), name, None)
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module.startswith(package):
        return f"{module}.{qualname}"
    for submodule in _walk(_find(package)):  # a constant: find the module attribute holding it
        candidate = sys.modules.get(submodule.path)
        if name in submodule.members and getattr(candidate, name, None) is value:
            return f"{submodule.path}.{name}"
    raise RuntimeError(f"{package}.__all__ names {name!r}, which is defined nowhere in it")


def _walk(module: griffe.Object | griffe.Alias) -> list[griffe.Module]:
    found: list[griffe.Module] = []
    for member in module.members.values():
        if not member.is_alias and isinstance(member, griffe.Module):
            found += [member, *_walk(member)]
    return found


def modules(package: str, *preferred: str) -> str:
    """mkdocstrings blocks for every public submodule of ``package``.

    Args:
        package: a dotted package name, e.g. ``"unisockets.protocol"``.
        preferred: submodule names (``"node"``, ``"shortcuts"``) to put first,
            in this order; the others follow alphabetically.

    Returns:
        One ``::: package.module`` line per submodule, separated by blank lines.

    Raises:
        RuntimeError: a preferred name is not a public submodule.
    """
    module = _find(package)
    submodules = sorted(
        name
        for name, member in module.members.items()
        if not member.is_alias and member.is_module and not name.startswith("_")
    )
    for name in preferred:
        if name not in submodules:
            raise RuntimeError(f"{package} has no public submodule {name!r}")
    ordered = [*preferred, *(name for name in submodules if name not in preferred)]
    return "\n\n".join(f"::: {package}.{name}" for name in ordered) + "\n"
