"""README.rst and docs/*.rst: every example gives what the text shows.

Each document is followed from the top, as a reader would: its own
``make serve`` (``config/kinto.ini``, memory backend, ``kinto start --port``
on a free port, which replaces 8888 in commands and outputs), the example data
of ``make demo`` (created before the first example, unless the document runs
``make demo`` itself), and its commands run by bash, in order, in a temporary
directory. ``make demo`` runs the demo script with this interpreter, as the
Makefile would with its virtualenv. How examples are marked and compared:
``tests/rst_examples.py``.
"""

import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .rst_examples import (
    Block,
    Command,
    ExampleError,
    commands,
    match,
    read_blocks,
    substitute,
)
from .server import KintoServer


# Server processes: `make test` runs these with the newest Kinto only.
pytestmark = pytest.mark.processes


ROOT = Path(__file__).parent.parent
DOCUMENTS = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
DEMO = [sys.executable, str(ROOT / "demo" / "create_example_data.py")]
ESCAPE_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SERVED = re.compile(r"\b(127\.0\.0\.1|localhost):8888\b")


def run_in_terminal(script: str, cwd: Path, env: dict, timeout: float = 120) -> tuple[int, str]:
    """Run ``script`` with bash in a terminal, as a reader would: curl then shows its
    progress meter when its output is piped, not otherwise. Exit status and output."""
    reader, terminal = pty.openpty()
    process = subprocess.Popen(
        ["bash", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while select.select([reader], [], [], max(0, deadline - time.monotonic()))[0]:
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            os.killpg(process.pid, signal.SIGKILL)
    finally:
        os.close(reader)
    status = process.wait(timeout=10)
    # What the reader sees: lines, without the escape codes of curl's bold headers.
    return status, ESCAPE_CODES.sub("", b"".join(chunks).decode().replace("\r\n", "\n"))


class DemoServer(KintoServer):
    """``make serve PORT=<free port>``, with ``settings`` added under ``[app:main]``."""

    def __init__(self, settings: str = "") -> None:
        super().__init__({})
        ini = (ROOT / "config" / "kinto.ini").read_text()
        self.ini.write_text(ini.replace("[app:main]\n", f"[app:main]\n{settings}\n", 1))


class Reader:
    """Follows one document's examples in order; fails at the first that differs."""

    def __init__(self, blocks: list[Block], workdir: Path) -> None:
        self.workdir = workdir
        self.bindings: dict[str, str] = {}
        self.server: DemoServer | None = None
        self.checked = 0
        self.runs_demo = any(
            command.command == "make demo"
            for block in blocks
            if block.language == "console" and not block.marker
            for command in commands(block)
        )
        bin_dir = Path(sys.executable).parent
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def follow(self, block: Block) -> None:
        if block.marker == "skip":
            return
        if block.marker == "file":
            (self.workdir / block.argument).write_text(self.served(block.text) + "\n")
        elif block.marker == "settings":
            self.serve(settings=block.text)
        elif block.language == "console":
            if self.server is None:
                self.serve()
            for command in commands(block):
                self.check(block, command)

    def serve(self, settings: str = "") -> None:
        self.stop()
        self.server = DemoServer(settings).start()
        if settings or not self.runs_demo:
            demo = [*DEMO, "--port", str(self.server.port)]
            subprocess.run(demo, check=True, capture_output=True, env=self.env)

    def stop(self) -> None:
        if self.server:
            self.server.__exit__(None, None, None)
            self.server = None

    def served(self, text: str) -> str:
        return SERVED.sub(lambda found: f"{found[1]}:{self.server.port}", text)

    def check(self, block: Block, command: Command) -> None:
        script = self.served(substitute(command.command, self.bindings))
        if script == "make demo":
            script = shlex.join([*DEMO, "--port", str(self.server.port)])
        status, output = run_in_terminal(script, self.workdir, self.env)
        shown = self.served("\n".join(command.expected))
        if status != 0 or not match(shown, output, self.bindings):
            pytest.fail(
                f"{block.path.name}:{command.line}: $ {command.command}\n"
                f"--- the text shows:\n{shown}\n"
                f"--- it gives (exit status {status}):\n{output}",
                pytrace=False,
            )
        self.checked += 1


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_examples_give_what_the_text_shows(path, tmp_path):
    blocks = read_blocks(path)
    reader = Reader(blocks, tmp_path)
    try:
        for block in blocks:
            reader.follow(block)
    finally:
        reader.stop()
    skipped = [f"{block.where} ({block.argument})" for block in blocks if block.marker == "skip"]
    print(f"{path.name}: {reader.checked} commands checked; skipped: {', '.join(skipped)}")


# The rules of tests/rst_examples.py, on small documents: each can fail.


def document(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.rst"
    path.write_text(text)
    return path


def test_console_blocks_give_commands_with_their_output(tmp_path):
    path = document(
        tmp_path,
        "Text\n\n.. code-block:: console\n\n"
        '    $ curl -s \\\n        http://x/\n    {\n      "a": 1}\n    # a comment\n'
        "    $ true\n\nMore text\n",
    )
    [block] = read_blocks(path)
    first, second = commands(block)
    assert (first.command, first.expected) == ("curl -s \\\n    http://x/", ["{", '  "a": 1}'])
    assert (second.command, second.expected, second.line) == ("true", [], 10)


@pytest.mark.parametrize(
    "text,error",
    [
        ("    $ curl http://x/\n", "outside a console block"),
        (".. code-block:: shell\n\n    $ curl http://x/\n", "belong in console blocks"),
        (".. code-block:: python\n\n    print(1)\n", "saved as a file or skipped"),
        (".. example: skip\n\n.. code-block:: console\n\n    $ true\n", "say why"),
        (".. example: file x.py\n\n.. code-block:: console\n\n    $ true\n", "does not apply"),
        (".. example: skip why\n\nText\n", "no code block after the marker"),
    ],
)
def test_badly_marked_examples_are_refused(tmp_path, text, error):
    with pytest.raises(ExampleError, match=error):
        read_blocks(document(tmp_path, text))


def test_whitespace_and_ellipsis_are_loose_the_rest_is_literal():
    bindings = {}
    assert match('{"data": [\n  {"id": "a", ...}]}', '{"data":[{"id":"a","x":1}]}', bindings)
    assert not match('{"data": [{"id": "b", ...}]}', '{"data":[{"id":"a","x":1}]}', bindings)
    assert (
        match("Expires: Sat, 28 Nov 2026 05:30:07 GMT", "Expires: Mon, 07 Dec 2026 1:0", {})
        is False
    )
    assert match(
        "Expires: Sat, 28 Nov 2026 05:30:07 GMT", "Expires: Mon, 07 Dec 2026 16:40:00 GMT", {}
    )


def test_a_timestamp_stands_for_the_same_value_throughout():
    bindings = {}
    assert match('ETag: "1795757330154"', 'ETag: "1796000000001"', bindings)
    assert bindings == {"1795757330154": "1796000000001"}
    assert not match("last_modified: 1795757330154", "last_modified: 1796000000002", bindings)
    assert not match("1111111111111 1111111111111", "1796000000001 1796000000002", {})
    assert match("1111111111111 2222222222222", "1796000000001 1796000000001", {})
    assert substitute("?_since=1795757330154&_expected=1", bindings) == (
        "?_since=1796000000001&_expected=1"
    )
    with pytest.raises(ExampleError, match="shown nowhere before"):
        substitute("?_since=1795757330155", bindings)
