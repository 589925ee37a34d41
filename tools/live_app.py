"""Start the real app (launch.py) in a subprocess and wait until it says it is ready (the tests' and the tools')."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from webui.server import free_port

ROOT = Path(__file__).resolve().parents[1]
CLOSED_ENDPOINT = "http://127.0.0.1:9"  # a hub address on a closed local port: "unreachable" at once


def app_env(home: Path | None = None) -> dict:
    """Environment for running launch.py in a subprocess (tests and tools): the environment it runs in, never a real
    hub, and `home` as its app home."""
    env = dict(os.environ, PHI3PC_NO_VENV="1", HF_ENDPOINT=CLOSED_ENDPOINT, PYTHONUNBUFFERED="1")
    if home is not None:
        env["PHI3PC_HOME"] = str(home)
    return env


@dataclass
class LiveApp:
    proc: subprocess.Popen
    url: str
    lines: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 20, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)  # SIGINT is what Ctrl-C sends
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_app(*args: str, home: Path | None = None, timeout: float = 180, env: dict | None = None) -> LiveApp:
    port = free_port("127.0.0.1", 7900)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), "--no-browser", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**app_env(home), **(env or {})},
        cwd=ROOT,
    )
    app = LiveApp(proc, "")
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            app.lines.append(line)
            m = re.search(r"\] ready\s+(http://\S+)", line)
            if m:
                app.url = m.group(1)
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            app.stop()
            raise RuntimeError("the app did not become ready:\n" + "".join(app.lines))
    return app
