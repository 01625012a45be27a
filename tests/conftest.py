"""Shared test configuration."""

from pathlib import Path

import pytest

#: shared/ sits beside the project root (see DEVELOPERS.md / the CI layout).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def vectors_dir() -> Path:
    """The directory of the recorded test vectors (``../shared/vectors``)."""
    path = SHARED / "vectors"
    if not path.is_dir():
        pytest.fail(f"test vectors not found at {path}: shared/ must sit beside the project")
    return path
