"""A Hugging Face Hub on 127.0.0.1: the part of the hub's HTTP API that huggingface_hub's
snapshot_download uses (repo info, HEAD and GET of /resolve/ with Range), serving real files.

    with LocalHub({"org/repo": {"sub/file.bin": Path(...)}}) as hub:
        os.environ["HF_ENDPOINT"] = hub.url

Faults for tests: `cut_once` (send half a file, then drop the connection: the client resumes
with a Range request), `down` (every request gets 503).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Served:
    method: str
    path: str
    range: str | None
    bytes_sent: int


@dataclass
class LocalHub:
    repos: dict[str, dict[str, Path]]  # repo id -> {path in repo: file on disk}
    cut_once: set[str] = field(default_factory=set)  # "repo/path" to cut on first GET
    down: bool = False
    log: list[Served] = field(default_factory=list)

    def __post_init__(self):
        self._sha = {}
        for repo, files in self.repos.items():
            for name, path in files.items():
                self._sha[(repo, name)] = hashlib.sha256(path.read_bytes()).hexdigest()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def do_HEAD(self):
                hub._serve(self, head=True)

            def do_GET(self):
                hub._serve(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LocalHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_):
        self._server.shutdown()
        self._server.server_close()

    def bytes_sent(self, suffix: str) -> int:
        return sum(s.bytes_sent for s in self.log if s.method == "GET" and s.path.endswith(suffix))

    # -- the API ---------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        if self.down:
            return self._send(h, 503, b"hub is down", head)
        m = re.match(r"^/api/models/(.+?)(?:/revision/([^/?]+))?(?:\?.*)?$", h.path)
        if m and m.group(1) in self.repos:
            repo = m.group(1)
            info = {"id": repo, "modelId": repo, "sha": COMMIT, "private": False, "gated": False,
                    "siblings": [{"rfilename": n} for n in sorted(self.repos[repo])]}
            return self._send(h, 200, json.dumps(info).encode(), head, "application/json")
        m = re.match(r"^/(.+?)/resolve/([^/]+)/(.+)$", h.path)
        if m and m.group(1) in self.repos and m.group(3) in self.repos[m.group(1)]:
            return self._file(h, m.group(1), m.group(3), head)
        return self._send(h, 404, b"not found", head, headers={"X-Error-Code": "EntryNotFound"})

    def _file(self, h, repo: str, name: str, head: bool) -> None:
        data = self.repos[repo][name].read_bytes()
        headers = {"ETag": f'"{self._sha[(repo, name)]}"', "X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        rng = h.headers.get("Range")
        start = 0
        status = 200
        if rng and not head:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        key = f"{repo}/{name}"
        if not head and key in self.cut_once:
            self.cut_once.discard(key)
            half = len(body) // 2
            self.log.append(Served("GET", h.path, rng, half))
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:half])
            h.wfile.flush()
            h.close_connection = True
            return
        self._send(h, status, body, head, "application/octet-stream", headers, rng)

    def _send(self, h, status, body, head, ctype="text/plain", headers=None, rng=None) -> None:
        # logged before the reply: a client that has its answer must find it in the log (no race)
        self.log.append(Served("HEAD" if head else "GET", h.path, rng, 0 if head else len(body)))
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)


def repo_from_folder(folder: Path, subfolder: str = "") -> dict[str, Path]:
    prefix = f"{subfolder}/" if subfolder else ""
    return {prefix + str(p.relative_to(folder)): p for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}
