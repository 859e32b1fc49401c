"""The examples of README.rst and docs/*.rst: how they are marked, read and compared.

How a document marks its examples (the ``.. example:`` lines are reStructuredText
comments, invisible once rendered):

* ``.. code-block:: console``: commands after ``$`` (continued by a trailing
  ``\\``), each followed by the output it prints; lines starting with ``#`` are
  comments. Every console block is run, in the order of the document.
* ``.. example: skip <why>`` on the line before a block: not run.
* ``.. example: file <name>`` before a ``python`` block: saved as ``<name>``
  where the commands run (``$ python <name>`` then runs it).
* ``.. example: settings`` before an ``ini`` block: Kinto is restarted with
  these lines under ``[app:main]`` of ``config/kinto.ini`` (memory backend:
  the data is gone), then the example data is created again.

A ``console`` or ``python`` block neither run nor skipped, or a ``$`` prompt
outside a console block, is an error: no example escapes the test.

Output is compared as doctest would with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``,
and stricter on timestamps: whitespace is ignored; ``...`` matches any text; an
HTTP date matches any HTTP date; a 13-digit number is a timestamp placeholder:
it matches any timestamp, the same number stands for the same timestamp
throughout the document, and once bound it replaces that number in later
commands (``_since=<an ETag shown above>``). Everything else is literal:
entry ids, principals, record ids, status lines, headers.
"""

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path


DIRECTIVE = re.compile(r"^(\s*)\.\. code-block::\s*(\S+)\s*$")
MARKER = re.compile(r"^\s*\.\. example:\s*(\S+)\s*(.*?)\s*$")
MARKERS = {"skip", "file", "settings"}
RUN = {"console": "", "python": "file", "ini": "settings"}
PROMPT = "$ "

TIMESTAMP = r"(?<!\d)\d{13}(?!\d)"
DAYS = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
HTTP_DATE = rf"(?:{DAYS}), \d\d (?:{MONTHS}) \d{{4}} \d\d:\d\d:\d\d GMT"
SQUEEZED_HTTP_DATE = rf"(?:{DAYS}),\d\d(?:{MONTHS})\d{{4}}\d\d:\d\d:\d\dGMT"
PLACEHOLDERS = re.compile(
    rf"(?P<ellipsis>\.\.\.)|(?P<date>{HTTP_DATE})|(?P<timestamp>{TIMESTAMP})"
)


class ExampleError(Exception):
    """A document whose examples are badly marked."""


@dataclass
class Block:
    path: Path
    line: int  # of the first line of the content, 1-based
    language: str
    text: str
    marker: str = ""  # "skip", "file" or "settings"
    argument: str = ""  # the reason to skip, the file name

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass
class Command:
    line: int
    command: str
    expected: list[str] = field(default_factory=list)


def read_blocks(path: Path) -> list[Block]:
    """The code blocks of a document, with their marker; checks the marking rules."""
    lines = path.read_text().splitlines()
    blocks, marker, index = [], None, 0
    while index < len(lines):
        line = lines[index]
        if found := MARKER.match(line):
            marker = (found[1], found[2], index + 1)
        elif found := DIRECTIVE.match(line):
            block, index = read_block(path, lines, index, found[1], found[2])
            if marker:
                block.marker, block.argument = marker[0], marker[1]
            blocks.append(block)
            marker = None
        elif line.strip():
            if marker:
                raise ExampleError(f"{path.name}:{marker[2]}: no code block after the marker")
            if line.lstrip().startswith(PROMPT):
                raise ExampleError(f"{path.name}:{index + 1}: a $ prompt outside a console block")
        index += 1
    for block in blocks:
        check_marking(block)
    return blocks


def read_block(path: Path, lines: list[str], index: int, indent: str, language: str):
    """The block whose directive is at ``lines[index]``, and the index of its last line."""
    index += 1
    while index < len(lines) and re.match(rf"{indent}\s+:\w[\w-]*:", lines[index]):
        index += 1  # directive options
    start, content = index, []
    while index < len(lines) and (
        not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > len(indent)
    ):
        content.append(lines[index])
        index += 1
    while content and not content[0].strip():
        content.pop(0)
        start += 1
    text = textwrap.dedent("\n".join(content)).strip("\n")
    return Block(path, start + 1, language, text), index - 1


def check_marking(block: Block) -> None:
    if block.marker and block.marker not in MARKERS:
        raise ExampleError(f"{block.where}: unknown marker {block.marker!r}")
    if block.marker == "skip":
        if not block.argument:
            raise ExampleError(f"{block.where}: say why the example is skipped")
        return
    if block.marker and RUN.get(block.language) != block.marker:
        raise ExampleError(f"{block.where}: {block.marker!r} does not apply to {block.language}")
    if block.marker == "file" and not block.argument:
        raise ExampleError(f"{block.where}: which file?")
    if block.language == "python" and not block.marker:
        raise ExampleError(f"{block.where}: a python block is saved as a file or skipped")
    if block.language != "console" and any(
        line.startswith(PROMPT) for line in block.text.splitlines()
    ):
        raise ExampleError(f"{block.where}: $ prompts belong in console blocks")


def commands(block: Block) -> list[Command]:
    """The commands of a console block, each with the output the text shows."""
    result: list[Command] = []
    lines = block.text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith(PROMPT):
            command = Command(block.line + index, line[len(PROMPT) :])
            while command.command.endswith("\\") and index + 1 < len(lines):
                index += 1
                command.command += "\n" + lines[index]
            result.append(command)
        elif line.startswith("#"):
            pass
        elif result:
            result[-1].expected.append(line)
        elif line.strip():
            raise ExampleError(f"{block.where}: output before the first command")
        index += 1
    return result


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pattern(expected: str, bindings: dict[str, str]) -> str:
    """A regular expression matching what ``expected`` shows (on squeezed text)."""
    parts, position, seen = [], 0, set()
    for found in PLACEHOLDERS.finditer(expected):
        parts.append(re.escape(squeeze(expected[position : found.start()])))
        position = found.end()
        timestamp = found["timestamp"]
        if found["ellipsis"]:
            parts.append(".*?")
        elif found["date"]:
            parts.append(SQUEEZED_HTTP_DATE)
        elif timestamp in bindings:
            parts.append(bindings[timestamp])
        elif timestamp in seen:
            parts.append(f"(?P=t{timestamp})")
        else:
            seen.add(timestamp)
            parts.append(rf"(?P<t{timestamp}>\d{{13}})")
    parts.append(re.escape(squeeze(expected[position:])))
    return "".join(parts)


def match(expected: str, actual: str, bindings: dict[str, str]) -> bool:
    """Whether ``actual`` is what ``expected`` shows; binds new timestamps if so."""
    found = re.fullmatch(pattern(expected, bindings), squeeze(actual), re.DOTALL)
    if found is None:
        return False
    bindings.update({name[1:]: value for name, value in found.groupdict().items()})
    return True


def substitute(command: str, bindings: dict[str, str]) -> str:
    """``command`` with the timestamps shown earlier replaced by the real ones."""

    def real(found: re.Match) -> str:
        if found[0] not in bindings:
            raise ExampleError(f"timestamp {found[0]} of {command!r} is shown nowhere before")
        return bindings[found[0]]

    return re.sub(TIMESTAMP, real, command)
