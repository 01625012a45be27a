"""The benchmark scripts run by these tests never install node packages (``npm ci``).

``benchmarks.webrtc_stacks`` installs its pinned npm packages when they are
missing; the tests only use them when they are already there (installed by
running the script by hand), and otherwise see those rows skipped.
"""

from __future__ import annotations

import pytest

from benchmarks.webrtc_stacks import NPM_INSTALL_ENV


@pytest.fixture(autouse=True)
def _no_npm_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NPM_INSTALL_ENV, "0")
