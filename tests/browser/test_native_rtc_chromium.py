"""The native WebRTC backend (str0m) against real headless Chromium (Pyodide tabs).

Reruns the tab <-> native node interop tests of test_interop.py with the
native node on ``open_node(..., webrtc_backend="native")``: the tab's
libwebrtc and str0m meet on the wire (DTLS, SCTP, DCEP, the ``"channel"``
handshake), and 1 MiB is echoed and checked by digest, with EOF both ways.
Skipped when the extension is not built.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from unisockets.transport.native_rtc import native_available

from ..native_nodes import nodes_on_native_backend
from . import test_interop
from .test_interop import (  # noqa: F401 - collected here again, with native nodes
    test_native_listens_tab_connects,
    test_tab_listens_native_connects,
)

pytestmark = [
    pytest.mark.trio,
    pytest.mark.slow,
    pytest.mark.skipif(not native_available(), reason="the native extension is not built"),
]


@pytest.fixture(autouse=True)
def native_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the tab interop tests' own nodes use the str0m backend (and check they did)."""
    with nodes_on_native_backend(monkeypatch, test_interop):
        yield
