"""examples/c/unisockets.h compiles in each of the original header's modes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, WasmFiles

SOURCE = """
#include "unisockets.h"
int probe(void) {
  struct sockaddr_in address;
  address.sin_family = AF_INET;
  address.sin_port = htons(1234);
  int fd = unisockets_socket(AF_INET, SOCK_STREAM, 0);
  return unisockets_connect(fd, (struct sockaddr *)&address, sizeof(address));
}
"""


@pytest.mark.parametrize(
    "flags",
    [
        ["--target=wasm32-wasi"],  # wasi-libc's headers
        ["--target=wasm32-wasi", "-DUNISOCKETS_WITH_ALIAS"],
        ["--target=wasm32-wasi", "-nostdinc", "-DUNISOCKETS_WITH_CUSTOM_ARPA_INET"],  # no libc
        ["-DUNISOCKETS_WITH_INVERSE_ALIAS"],  # the system's own sockets, natively
    ],
)
def test_header_compiles(wasm_files: WasmFiles, tmp_path: Path, flags: list[str]) -> None:
    source = tmp_path / "probe.c"
    source.write_text(SOURCE)
    include = f"-I{ROOT / 'examples' / 'c'}"
    command = ["clang-16", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", include, *flags]
    result = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
