"""The build-time generators of docs/hooks/ say what the code says."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import sys
from typing import Any

import griffe
import pytest
from mkdocs.exceptions import PluginError

import unisockets
import unisockets.net
import unisockets.protocol
from unisockets.cli import main as cli_main
from unisockets.protocol import client_states, server_states
from unisockets.protocol import stream as stream_protocol
from unisockets.protocol.messages import MESSAGE_TYPES
from unisockets.protocol.wire import decode, encode
from unisockets.signaling.limits import ServerLimits

from .conftest import HOOKS, ROOT

sys.path.insert(0, str(HOOKS))

import docgen_api
import docgen_cli
import docgen_limits
import docgen_protocol
import griffe_public
import griffe_rst
import unisockets_docs

# --- the recorded session ------------------------------------------------------------------


def test_the_session_sends_every_opcode_as_real_encoded_frames() -> None:
    steps = docgen_protocol.record_session()
    assert {step.message.OPCODE for step in steps} == set(MESSAGE_TYPES)
    for step in steps:
        assert encode(decode(step.frame)) == step.frame
        assert {step.sender, step.recipient} & {"server"}, "every frame goes via the server"
    assert [step.phase for step in steps] == sorted(
        (step.phase for step in steps), key=list(docgen_protocol.PHASES).index
    ), "phases appear in order"


def test_directions_follow_who_sent_each_opcode() -> None:
    table = docgen_protocol.opcode_table()
    row = {line.split("`")[1]: line for line in table.splitlines()[2:]}
    assert set(row) == set(MESSAGE_TYPES)
    assert "| node → server |" in row["knock"]
    assert "| server → node |" in row["acknowledged"]
    for relayed in ("offer", "answer", "candidate"):
        assert "(relayed)" in row[relayed]


@pytest.mark.parametrize("opcode", list(MESSAGE_TYPES))
def test_each_message_section_lists_the_wire_fields_and_a_matching_frame(opcode: str) -> None:
    reference = docgen_protocol.message_reference()
    section = reference.split(f"### `{opcode}` {{ #opcode-{opcode} }}")[1].split("\n### ")[0]
    cls = MESSAGE_TYPES[opcode]
    for f in dataclasses.fields(cls):
        assert f"| `{f.metadata['wire']}` |" in section
    (frame,) = re.findall(r"```json\n(.*?)\n```", section)
    assert type(decode(frame)) is cls
    assert encode(decode(frame)) == frame


def test_sequence_diagrams_have_one_arrow_per_frame() -> None:
    steps = docgen_protocol.record_session()
    for phase in docgen_protocol.PHASES:
        diagram = docgen_protocol.sequence_diagram(phase)
        arrows = [line for line in diagram.splitlines() if "->>" in line]
        assert len(arrows) == sum(step.phase == phase for step in steps)
        assert ";" not in diagram and "#" not in diagram  # statement separators in Mermaid
    with pytest.raises(KeyError):
        docgen_protocol.sequence_diagram("no-such-phase")


@pytest.mark.parametrize(
    ("name", "machine"),
    [
        ("server-client", server_states.CLIENT_MACHINE),
        ("server-alias", server_states.ALIAS_MACHINE),
        ("client-join", client_states.JOIN_MACHINE),
        ("client-request", client_states.REQUEST_MACHINE),
    ],
)
def test_state_diagrams_are_the_tables_render_output(
    name: str, machine: server_states.StateMachine[Any, Any]
) -> None:
    text = docgen_protocol.state_machine(name)
    assert f"```mermaid\n{server_states.render_mermaid(machine)}```" in text
    rows = [line for line in text.splitlines() if line.startswith("    | `")]
    assert len(rows) == len(machine.transitions)


def test_stream_diagram_and_frame_types_come_from_protocol_stream() -> None:
    assert stream_protocol.render_mermaid() in docgen_protocol.stream_state_machine()
    table = docgen_protocol.frame_types()
    for frame_type in stream_protocol.FrameType:
        assert f"| `0x{frame_type:02x}` | {frame_type.name} |" in table


def test_data_plane_example_is_a_real_exchange() -> None:
    table = docgen_protocol.data_plane_example()
    frames = [bytes.fromhex(hex_) for hex_ in re.findall(r"\| `([0-9a-f ]+)` \|", table)]
    names = [stream_protocol.FrameType(frame[0]).name for frame in frames]
    assert names == ["DATA", "DATA", "CREDIT", "DATA", "EOF", "RESET"]
    data = b"".join(frame[1:] for frame in frames if frame[0] == stream_protocol.FrameType.DATA)
    assert data == b"hello, world"
    receiver = stream_protocol.StreamConnection(
        max_message_size=6, receive_window=8, grant_threshold=4
    )
    for frame in frames[:2]:
        receiver.receive_frame(frame)  # a receiver with the same window takes them


# --- the mkdocs hook -------------------------------------------------------------------------


def test_expand_replaces_directive_lines_and_leaves_prose_alone() -> None:
    page = (
        "# t\n\nthe `<!-- gen: NAME -->` syntax\n\n<!-- gen: frame-types -->\n\n"
        "<!-- gen: sequence refused -->\n"
    )
    out = unisockets_docs.expand(page, "t.md")
    assert "the `<!-- gen: NAME -->` syntax" in out
    assert docgen_protocol.frame_types().rstrip("\n") in out
    assert "sequenceDiagram" in out
    assert "<!-- gen: frame-types -->" not in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("<!-- gen: no-such-thing -->", "unknown generator"),
        ("<!-- gen: sequence no-such-phase -->", "failed"),
        ("<!-- gen: frame-types extra -->", "failed"),
        ("<!-- gen:frame-types -->", "malformed"),
        ("  <!-- gen: frame-types", "malformed"),
    ],
)
def test_expand_stops_the_build_on_a_bad_directive(line: str, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        unisockets_docs.expand(f"# t\n\n{line}\n", "t.md")


# --- the API reference -----------------------------------------------------------------------


@pytest.mark.parametrize("package", [unisockets, unisockets.net, unisockets.protocol])
def test_export_tables_link_every_name_to_where_it_is_defined(package: object) -> None:
    name = package.__name__  # type: ignore[attr-defined]
    table = docgen_api.exports(name)
    links = dict(re.findall(r"\[`(\w+)`\]\[([\w.]+)\]", table))
    local = set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))  # defined in the package
    assert set(links) | local == set(getattr(package, "__all__", ()))
    for exported, target in links.items():
        module_name, _, attribute = target.rpartition(".")
        assert module_name != name, f"{exported} is linked to the package, not its definition"
        defined = getattr(importlib.import_module(module_name), attribute)
        assert defined is getattr(package, exported), target


def test_lazily_exported_names_are_found_by_importing_them() -> None:
    """For a package whose ``__getattr__`` exports names that Griffe cannot see."""
    assert (
        docgen_api._runtime_path("unisockets.net", "open_node") == "unisockets.net.node.open_node"
    )
    assert docgen_api._runtime_path("unisockets.net", "SHUT_WR") == "unisockets.net.sockets.SHUT_WR"
    with pytest.raises(RuntimeError):
        docgen_api._runtime_path("unisockets.net", "no_such_name")


def test_module_lists_cover_every_public_submodule() -> None:
    text = docgen_api.modules("unisockets.protocol", "messages")
    listed = re.findall(r"^::: (\S+)$", text, re.MULTILINE)
    assert listed[0] == "unisockets.protocol.messages"
    expected = {
        info.name
        for info in pkgutil.iter_modules(unisockets.protocol.__path__, "unisockets.protocol.")
        if not info.name.rsplit(".", 1)[1].startswith("_")
    }
    assert set(listed) == expected
    with pytest.raises(RuntimeError):
        docgen_api.modules("unisockets.protocol", "no_such_module")


def test_cli_help_is_the_commands_own_help() -> None:
    text = docgen_cli.cli_help("signaling-server")
    assert text.startswith("```text\n$ unisockets signaling-server --help\nUsage: unisockets")
    assert "--tls-cert" in text
    with pytest.raises(RuntimeError):
        docgen_cli.cli_help("no-such-command")


# --- reStructuredText in docstrings ----------------------------------------------------------


def test_roles_become_links_inside_the_package_and_code_outside() -> None:
    text = griffe_rst.convert_roles(
        ":class:`~unisockets.net.SocketStream`, :func:`unisockets.net.open_node`, "
        ":meth:`trio.abc.Stream.aclose`, :class:`the stream <unisockets.net.SocketStream>`"
    )
    link = '<autoref identifier="unisockets.net.SocketStream" optional>'
    assert text.count(link) == 2
    assert f"{link}<code>SocketStream</code></autoref>" in text
    assert "<code>unisockets.net.open_node()</code>" in text
    assert "`trio.abc.Stream.aclose()`" in text
    assert f"{link}<code>the stream</code></autoref>" in text


def test_relative_names_resolve_in_the_docstrings_scope() -> None:
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)])
    module = loader.load("unisockets.protocol.stream")
    assert isinstance(module, griffe.Module)
    method = module["StreamConnection.flush"]
    text = griffe_rst.convert_roles(":meth:`send_eof`, :class:`StreamConnection`", method)
    assert 'identifier="unisockets.protocol.stream.StreamConnection.send_eof"' in text
    assert 'identifier="unisockets.protocol.stream.StreamConnection"' in text
    imported = griffe_rst.convert_roles(":class:`LocalProtocolError`", module)
    assert 'identifier="unisockets.protocol.errors.LocalProtocolError"' in imported


def test_simple_tables_and_literal_markers_become_markdown() -> None:
    text = (
        "A frame::\n\n    +---+\n\n"
        "====  ======  =======\n"
        "type  name    payload\n"
        "====  ======  =======\n"
        "0x00  DATA    some\n"
        "              bytes\n"
        "0x01  EOF     none\n"
        "====  ======  =======\n"
    )
    out = griffe_rst.convert_docstring(text)
    assert out.startswith("A frame:\n\n    +---+\n")
    assert "| type | name | payload |" in out
    assert "| 0x00 | DATA | some bytes |" in out
    assert "| 0x01 | EOF | none |" in out
    assert "====" not in out


def test_undocumented_special_methods_are_hidden_documented_members_stay() -> None:
    extensions = griffe.load_extensions(griffe_public.HideUndocumentedSpecials())
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)], extensions=extensions)
    module = loader.load("unisockets.net.overlay")
    assert isinstance(module, griffe.Module)
    node = module["OverlayNode"]
    assert not node["__repr__"].is_public
    assert node["connect"].is_public
    assert node["__init__"].public is None  # left to mkdocstrings (merged into the class)


# --- the signaling server's limits ----------------------------------------------------------


def test_limits_table_and_summary_state_the_code_defaults() -> None:
    limits = ServerLimits()
    rows = {
        line.split("`")[1]: line.split("|")[2].strip()
        for line in docgen_limits.limits_table().splitlines()[2:]
    }
    assert rows == {
        field.name: repr(getattr(limits, field.name)) for field in dataclasses.fields(limits)
    }
    summary = docgen_limits.limits_summary()
    assert f"{limits.max_messages_per_second:,g} messages per second" in summary
    assert f"bursts of {limits.burst:,}," in summary
    assert f"{limits.max_clients:,} clients" in summary


def test_the_pages_generate_the_limits_rather_than_state_them() -> None:
    assert "<!-- gen: server-limits -->" in (ROOT / "docs" / "signaling-server.md").read_text()
    getting_started = (ROOT / "docs" / "getting-started.md").read_text()
    assert "<!-- gen: server-limits-summary -->" in getting_started
    assert "messages per second" not in getting_started, "state limits via the generator"


def test_the_option_table_of_signaling_server_md_has_the_commands_defaults() -> None:
    command = cli_main.commands["signaling-server"]  # type: ignore[attr-defined]
    defaults = {param.opts[0]: param.default for param in command.params}
    text = (ROOT / "docs" / "signaling-server.md").read_text()
    rows = re.findall(r"^\| `(--[\w-]+)[^`]*` \| `([^`]+)` \|", text, re.MULTILINE)
    assert {"--rate", "--burst", "--ping-interval", "--max-clients"} <= {o for o, _ in rows}
    for option, shown in rows:
        default = defaults[option]
        if isinstance(default, int | float):
            assert float(shown) == default, f"{option}: the page says {shown}, the code {default}"
        else:
            assert shown == default, f"{option}: the page says {shown}, the code {default}"
