"""The mkdocs hook that bundles the site's browser assets, so that the site works offline.

Material for MkDocs loads Mermaid from unpkg.com when a page has a diagram, unless
a script of the page has defined ``mermaid`` already, and its ``offline`` plugin
loads the iframe-worker shim (search over ``file://``) from unpkg.com unless a
polyfill named ``iframe-worker`` is configured. mkdocs.yml names both as local
files (``extra_javascript``, ``extra.polyfills``); this hook copies them into the
site from ``node_modules/``, where ``make docs`` installs them from the pinned
``package.json``/``package-lock.json`` of the repository root (``npm ci``).

A missing file stops the build with the command that installs it, so a site that
would fetch from a CDN is never built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

__all__ = ["ASSETS", "NODE_MODULES", "on_files"]

#: Where ``npm ci`` in the repository root installs the packages.
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"

#: The site path of each bundled file (as mkdocs.yml names it) -> its file under node_modules/.
ASSETS = {
    "assets/vendor/mermaid.min.js": "mermaid/dist/mermaid.min.js",
    "assets/vendor/iframe-worker-shim.js": "iframe-worker/shim/index.js",
}


def on_files(files: Files, config: Any) -> Files:
    """mkdocs event: add the bundled files to the site.

    Raises:
        PluginError: a file is missing from node_modules/ (``npm ci`` has not run).
    """
    for dest, source in ASSETS.items():
        path = NODE_MODULES / source
        if not path.is_file():
            raise PluginError(
                f"{path} is missing: run `make docs`, or `npm ci` in {NODE_MODULES.parent}"
            )
        files.append(File.generated(config, dest, abs_src_path=str(path)))
    return files
