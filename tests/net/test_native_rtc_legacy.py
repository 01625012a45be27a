"""Original (legacy) unisockets peers against nodes on the native WebRTC backend (str0m).

Reruns test_legacy.py with our nodes on ``open_node(..., webrtc_backend="native")``:
the legacy peer (an aiortc emulation of the original's transporter, see
legacy_peer.py) and str0m meet on the wire, with its one ``"channel"`` and no
sub-protocol, both as offerer and as answerer. Skipped when the extension is
not built.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from unisockets.transport.native_rtc import native_available

from ..native_nodes import nodes_on_native_backend
from . import test_legacy
from .test_legacy import (  # noqa: F401 - collected here again, with native nodes
    lazy,
    legacy_offers,
    test_legacy_client_our_listener,
    test_modern_peers_use_labelled_pipes_and_say_hello,
    test_our_client_legacy_listener,
    test_second_connection_to_legacy_peer_refused,
)

pytestmark = [
    pytest.mark.trio,
    pytest.mark.skipif(not native_available(), reason="the native extension is not built"),
]


@pytest.fixture(autouse=True)
def native_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the legacy tests' own nodes use the str0m backend (and check they did)."""
    with nodes_on_native_backend(monkeypatch, test_legacy):
        yield
