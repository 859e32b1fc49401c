"""Real Kinto server processes on 127.0.0.1, for end-to-end tests and benchmarks.

    with KintoServer(settings) as server:
        requests.get(f"{server.url}/buckets/monitor/collections/changes/records")

The server is stopped when the block exits, also on failure.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


INI_TEMPLATE = """\
[app:main]
use = egg:kinto
{app_settings}

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {port}
threads = {threads}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = plain

[formatter_plain]
format = %(asctime)s %(levelname)s %(name)s %(message)s
"""


# The ``kinto`` command of the running interpreter's environment.
KINTO = str(Path(sys.executable).parent / "kinto")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_ini(path: Path, settings: dict, port: int, threads: int = 4) -> Path:
    """An ini file for ``kinto``; ``settings`` keys are written under ``kinto.``."""
    lines = []
    for key, value in settings.items():
        if value is None:
            continue
        name = key if key.startswith(("kinto.", "multiauth.")) else f"kinto.{key}"
        lines.append(f"{name} = {value}")
    path.write_text(INI_TEMPLATE.format(app_settings="\n".join(lines), port=port, threads=threads))
    return path


def run_kinto(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a ``kinto`` command (e.g. ``migrate --ini x.ini``) and return its result."""
    return subprocess.run(
        [KINTO, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


class KintoServer:
    """``kinto start`` in a child process, on a free port of 127.0.0.1."""

    def __init__(self, settings: dict, threads: int = 4, env: dict | None = None) -> None:
        self.settings = settings
        self.threads = threads
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="kinto-changes-")
        self.ini = write_ini(Path(self._tmp.name) / "kinto.ini", settings, self.port, threads)
        self.log = Path(self._tmp.name) / "server.log"

    def start(self, timeout: float = 30) -> "KintoServer":
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                # --port for inis that take it (port = %(http_port)s), as config/kinto.ini.
                [KINTO, "start", "--ini", str(self.ini), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Kinto exited at startup:\n{self.log.read_text()}")
            try:
                urllib.request.urlopen(f"{self.url}/__heartbeat__", timeout=2)
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Kinto did not answer in {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def peak_rss_kib(self) -> int:
        """Peak resident memory of the server process (VmHWM), in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1])

    def __enter__(self) -> "KintoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._tmp.cleanup()
