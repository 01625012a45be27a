"""The one import table (abi.IMPORTS / WASI_SOCKET_FUNCTIONS) that the runner and the page share."""

from __future__ import annotations

import json
import subprocess
import sys

import wasmtime

from unisockets.wasm import abi

from .conftest import WasmFiles


def _imports(path: object) -> dict[tuple[str, str], wasmtime.FuncType]:
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(path))
    found = {}
    for item in module.imports:
        if isinstance(item.type, wasmtime.FuncType):
            found[(item.module, item.name or "")] = item.type
    return found


def test_table_matches_what_the_examples_import(wasm_files: WasmFiles) -> None:
    """Every unisockets_* import of the C and Go programs is in the table, with its arity."""
    table = {(s.module, s.name): s for s in (*abi.IMPORTS, *abi.WASI_SOCKET_FUNCTIONS)}
    seen = set()
    for path in (wasm_files.echo_server, wasm_files.echo_client, wasm_files.go_echo_client):
        for (module, name), func_type in _imports(path).items():
            if module == abi.IMPORT_MODULE or (module, name) in table:
                spec = table[(module, name)]
                assert len(func_type.params) == len(spec.params), name
                assert [str(p) for p in func_type.params] == ["i32"] * len(spec.params), name
                assert [str(r) for r in func_type.results] == ["i32"], name
                seen.add(name)
    assert {"unisockets_socket", "unisockets_accept", "unisockets_errno", "fd_close"} <= seen


def test_import_table_is_json_and_complete() -> None:
    """The JSON form names every import once, and errnos in WASI's numbering."""
    table = json.loads(json.dumps(abi.import_table()))
    names = [entry["name"] for entry in table["imports"]]
    assert names == [spec.name for spec in abi.IMPORTS]
    assert len(set(names)) == len(names)
    assert {e["name"] for e in table["wasi"]} == {s.name for s in abi.WASI_SOCKET_FUNCTIONS}
    accept = next(e for e in table["imports"] if e["name"] == "unisockets_accept")
    assert accept == {
        "module": "env",
        "name": "unisockets_accept",
        "params": ["fd", "address", "address_length_pointer"],
        "blocks": True,
        "errors": "errno",
        "summary": "accept a connection",
    }
    assert table["errno"]["ECONNREFUSED"] == 14
    assert table["errno"]["ECANCELED"] == 11


def test_abi_loads_without_wasmtime() -> None:
    """The page's Pyodide has no wasmtime: unisockets.wasm.abi must not need it."""
    code = (
        "import sys; sys.modules['wasmtime'] = None\n"
        "from unisockets.wasm import abi\n"
        "assert abi.import_table()['imports']\n"
        "assert 'unisockets.wasm.runner' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
