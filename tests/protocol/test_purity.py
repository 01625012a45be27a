"""unisockets.protocol is sans-IO: it imports only the standard library, and no I/O runtime.

Checked twice: at run time, by importing every module of the package in a
fresh interpreter and looking at ``sys.modules`` (this also catches a parent
package that drags a runtime in); and statically, by reading every import
statement of the package's source (this names the offending file and line).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import unisockets.protocol

#: Runtimes and I/O modules the protocol layer must never import (some are stdlib).
FORBIDDEN = (
    "trio",
    "anyio",
    "asyncio",
    "aiortc",
    "aioice",
    "socket",
    "_socket",
    "ssl",
    "selectors",
    "trio_websocket",
    "wsproto",
    "trio_asyncio",
)

PACKAGE_DIR = Path(unisockets.protocol.__file__).resolve().parent
ROOT = PACKAGE_DIR.parents[1]

_PROBE = """
import json, pkgutil, sys
import unisockets.protocol as package
names = [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    __import__(name)
forbidden = {forbidden!r}
print(json.dumps({{
    "modules": names,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in forbidden),
}}))
"""


def test_importing_every_protocol_module_loads_no_runtime() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(forbidden=FORBIDDEN)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = {f"unisockets.protocol.{path.stem}" for path in _sources()} - {
        "unisockets.protocol.__init__"
    }
    assert expected <= set(report["modules"])
    assert {"unisockets.protocol.server", "unisockets.protocol.wire"} <= set(report["modules"])
    assert report["loaded"] == []


def _sources() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_protocol_sources_import_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) - set(FORBIDDEN) | {"__future__"}
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {name}"
                for name in names
                if name.split(".")[0] not in allowed
            ]
    assert len(_sources()) >= 5
    assert offenders == []
