"""The tab's import host serves the whole shared import table (pure Python, no Chromium)."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from unisockets.browser import wasm_guest
from unisockets.wasm import abi


def test_tab_serves_every_import_of_the_table() -> None:
    """An import added to unisockets.wasm.abi needs a tab implementation too (docs/wasm.md)."""
    assert wasm_guest.unimplemented() == []


def test_an_import_the_tab_lacks_fails_with_enosys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the tab learns a new import, calling it gives -1/ENOSYS; the rest still works."""
    extra = abi.ImportSpec(
        module=abi.IMPORT_MODULE,
        name="unisockets_future_call",
        params=("fd",),
        blocks=False,
        errors="errno",
        summary="an import the tab does not know",
    )
    monkeypatch.setattr(abi, "IMPORTS", (*abi.IMPORTS, extra))
    assert wasm_guest.unimplemented() == ["unisockets_future_call"]
    node: Any = None  # the calls below touch no node
    guest = wasm_guest.TabGuest(node)
    assert guest.call("unisockets_future_call", 3) == -1
    assert guest.call("unisockets_errno") == abi.wasi_errno(errno.ENOSYS) == 52
    assert guest.call("unisockets_socket", 1, 99, 0) == -1  # an unknown type: still served
    assert guest.call("unisockets_errno") == 58  # ENOTSUP, as natively
