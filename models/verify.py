"""Is a downloaded snapshot intact? Checked against the names the Hugging Face cache gives its blobs.

In the cache, `snapshots/<commit>/<file>` links to `blobs/<etag>`: for LFS files the etag is the
SHA-256 of the content, for small git files the git blob SHA-1. So the cache can be verified offline,
file by file, and a bad file can be removed and fetched again without touching the others.
A verified blob is recorded (name, size, mtime) so the check costs nothing on the next start.

Where symlinks cannot be made (Windows without Developer Mode), huggingface_hub puts the file itself
in `snapshots/` (file_download._create_symlink): a fresh download's blob is *moved* there, so `blobs/`
keeps nothing and the cache records no etag for it (no metadata file in cache mode; the `.locks/<etag>.lock`
files are deleted on Windows); a blob that was already in `blobs/` is *copied*, and stays. Such a file
is checked against, in order: the etag recorded in the ledger when it was first verified; a blob in
`blobs/` named by the file's own hash (the copy's source); the etag the hub gives for that file at that
commit (the HEAD request hf_hub_download itself makes), only when an `endpoint` is given. A file none of
these can name is left alone: it cannot be told bad.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

GIT_MAX = 10 * 1024 * 1024  # the hub keeps files of 10 MB and more in LFS: a git-blob etag names a smaller file
CACHE_REPO = re.compile(r"^(model|dataset|space)s--(.+)$")


@dataclass(frozen=True)
class BadFile:
    path: Path  # the file in the snapshot
    blob: Path  # its blob (for a file huggingface_hub copied or moved into the snapshot: blobs/<etag>, if any)
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


def _content_hashes(path: Path) -> set[str]:
    """The names the cache could give this content: its SHA-256, and its git blob SHA-1 if small enough."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(f"blob {size}\0".encode()) if size < GIT_MAX else None  # noqa: S324 - git's blob id
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            sha256.update(chunk)
            if sha1 is not None:
                sha1.update(chunk)
    return {sha256.hexdigest()} | ({sha1.hexdigest()} if sha1 is not None else set())


def _in_cache(path: Path) -> tuple[Path, str, str, str, str] | None:
    """(repo folder, type, id, commit, name in the repo) of <cache>/<type>s--<id>/snapshots/<commit>/<name>."""
    parts = path.parts
    for i in range(len(parts) - 3, 0, -1):
        found = CACHE_REPO.match(parts[i - 1]) if parts[i] == "snapshots" else None
        if found:
            return (Path(*parts[:i]), found.group(1), found.group(2).replace("--", "/"), parts[i + 1],
                    "/".join(parts[i + 2:]))
    return None


def _hub_etag(endpoint: str, repo_type: str, repo_id: str, commit: str, filename: str) -> str | None:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url  # noqa: PLC0415 - only for moved files

    url = hf_hub_url(repo_id, filename, repo_type=repo_type, revision=commit, endpoint=endpoint)
    return get_hf_file_metadata(url, endpoint=endpoint).etag


class _HubUnreachable(Exception):
    pass


def _file_stamp(path: Path, etag: str) -> str:
    st = path.stat()
    return f"{path.resolve()}|{etag}|{st.st_size}|{st.st_mtime_ns}"


def check(folder: Path, ledger: Path, endpoint: str | None = None) -> list[BadFile]:
    """Every file under `folder` (a snapshot or a subfolder of one) whose blob is missing or wrong.

    `endpoint`: the hub to ask for the etag of a file huggingface_hub moved into the snapshot (no symlinks)
    and that was never verified here; None never touches the network.
    """
    try:
        known = set(json.loads(ledger.read_text()))
    except (OSError, ValueError):
        known = set()
    bad, good = [], set()
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        if not path.is_symlink():
            try:
                verdict = _check_real_file(path, known, endpoint)
            except _HubUnreachable:
                endpoint, verdict = None, None  # ask once per check, not once per file
            if isinstance(verdict, BadFile):
                bad.append(verdict)
            elif verdict is not None:
                good.add(verdict)
            continue
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


def _check_real_file(path: Path, known: set[str], endpoint: str | None) -> BadFile | str | None:
    """A file (not a link) in a snapshot: its ledger stamp when good, a BadFile, None when no etag is known."""
    where = _in_cache(path)
    if where is None:
        return None  # not in a cache snapshot (e.g. local_dir): nothing to compare against
    repo, repo_type, repo_id, commit, filename = where
    prefix = f"{path.resolve()}|"
    etag = next((s.split("|")[1] for s in known if s.startswith(prefix)), None)  # recorded when first verified
    if etag is not None and _file_stamp(path, etag) in known:
        return _file_stamp(path, etag)
    hashes: set[str] = set()
    if etag is None:  # copied from a blob that is still there? Only a blob of the same size can be its source
        size = path.stat().st_size
        blobs = repo / "blobs"
        same_size = {b.name for b in blobs.iterdir() if b.is_file() and b.stat().st_size == size} \
            if blobs.is_dir() else set()
        hashes = _content_hashes(path) if same_size else set()
        etag = next(iter(sorted(hashes & same_size)), None)
    if etag is None and endpoint is not None:
        try:
            etag = _hub_etag(endpoint, repo_type, repo_id, commit, filename)
        except Exception as err:  # noqa: BLE001 - offline, hub down, no access: the file is not known bad
            raise _HubUnreachable from err
    if etag is None:
        return None
    if etag.lower() not in (hashes or _content_hashes(path)):
        return BadFile(path, repo / "blobs" / etag, "content does not match its hash (corrupt or truncated)")
    return _file_stamp(path, etag)


def remove(bad: list[BadFile]) -> None:
    """Drop the bad files so the next download fetches exactly those again."""
    for b in bad:
        for p in (b.path, b.blob):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
