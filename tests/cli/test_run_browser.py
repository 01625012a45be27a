"""``unisockets run --browser``: user errors and the URL it prints (the page: tests/browser)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from click.testing import CliRunner

from unisockets.cli import main
from unisockets.cli.run_browser import page_url


def test_browser_needs_signaling(tmp_path: Path) -> None:
    program = tmp_path / "p.wasm"
    program.write_bytes(b"\0asm\1\0\0\0")
    for extra in ([], ["--native"]):
        result = CliRunner().invoke(main, ["run", "--browser", str(program), *extra])
        assert result.exit_code == 2
        assert "--browser needs --signaling URL" in result.output
        assert "Traceback" not in result.output


def test_page_url_carries_arguments_and_environment() -> None:
    url = page_url(
        "http://127.0.0.1:8000/",
        "echo server.wasm",
        "ws://127.0.0.1:6999",
        "10.1.2",
        ("0.0.0.0", "12 34", "-x"),
        {"A": "b=c"},
    )
    parts = urlsplit(url)
    assert parts.path == "/wasm.html"
    query = parse_qs(parts.query)
    assert query == {
        "program": ["programs/echo server.wasm"],
        "signaling": ["ws://127.0.0.1:6999"],
        "subnet": ["10.1.2"],
        "arg": ["0.0.0.0", "12 34", "-x"],
        "env": ["A=b=c"],
    }
