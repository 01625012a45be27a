"""Shared test configuration."""

from collections.abc import Generator
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


def _unwrap_keyboard_interrupt() -> Generator[None, object, object]:
    """A hook wrapper: re-raise a KeyboardInterrupt that a trio nursery wrapped in a group.

    trio raises Ctrl-C as KeyboardInterrupt where the test happens to be, and a
    nursery wraps it in a BaseExceptionGroup; pytest stops the session as
    interrupted (exit status 2) only for a bare KeyboardInterrupt, and would
    otherwise count the group as this test's failure and run the next one.
    """
    try:
        return (yield)
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from group
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """Fixture setup: see :func:`_unwrap_keyboard_interrupt`."""
    return (yield from _unwrap_keyboard_interrupt())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """The test, and pytest-trio's fixtures: see :func:`_unwrap_keyboard_interrupt`."""
    return (yield from _unwrap_keyboard_interrupt())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    """Fixture teardown: see :func:`_unwrap_keyboard_interrupt`."""
    return (yield from _unwrap_keyboard_interrupt())
