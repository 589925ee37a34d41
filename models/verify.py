"""Is a downloaded snapshot intact? Checked against the names the Hugging Face cache gives its blobs.

In the cache, `snapshots/<commit>/<file>` links to `blobs/<etag>`: for LFS files the etag is the
SHA-256 of the content, for small git files the git blob SHA-1. So the cache can be verified offline,
file by file, and a bad file can be removed and fetched again without touching the others.
A verified blob is recorded (name, size, mtime) so the check costs nothing on the next start.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BadFile:
    path: Path  # the file in the snapshot
    blob: Path
    why: str


def _digest_ok(blob: Path, name: str) -> bool | None:
    """True/False when the blob name is a content hash we can check; None when it is not."""
    if len(name) == 64:
        h = hashlib.sha256()
        prefix = b""
    elif len(name) == 40:
        h = hashlib.sha1()  # noqa: S324 - git's own blob id, not security
        prefix = f"blob {blob.stat().st_size}\0".encode()
    else:
        return None
    h.update(prefix)
    with open(blob, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest() == name.lower()


def _stamp(blob: Path) -> str:
    st = blob.stat()
    return f"{blob.name}:{st.st_size}:{st.st_mtime_ns}"


def check(folder: Path, ledger: Path) -> list[BadFile]:
    """Every file under `folder` (a snapshot or a subfolder of one) whose blob is missing or wrong."""
    try:
        known = set(json.loads(ledger.read_text()))
    except (OSError, ValueError):
        known = set()
    bad, good = [], set()
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        if not path.is_symlink():
            continue  # not a cache link (e.g. local_dir): nothing to compare against
        blob = path.resolve()
        if not blob.is_file():
            bad.append(BadFile(path, blob, "its blob is missing"))
            continue
        stamp = _stamp(blob)
        if stamp in known:
            good.add(stamp)
            continue
        ok = _digest_ok(blob, blob.name)
        if ok is False:
            bad.append(BadFile(path, blob, "content does not match its hash (corrupt or truncated)"))
        else:
            good.add(stamp)
    if good - known:
        ledger.parent.mkdir(parents=True, exist_ok=True)
        tmp = ledger.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(known | good)))
        os.replace(tmp, ledger)
    return bad


def remove(bad: list[BadFile]) -> None:
    """Drop the bad files so the next download fetches exactly those again."""
    for b in bad:
        for p in (b.path, b.blob):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
