"""models/verify.py on Hugging Face caches laid out by huggingface_hub itself, with and without symlinks.

Without symlinks (Windows without Developer Mode) huggingface_hub puts the file itself in snapshots/:
a fresh download's blob is moved there (blobs/ keeps nothing), a blob already cached is copied. The
switch is huggingface_hub's own `file_download.are_symlinks_supported`, the only thing patched here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import file_download, snapshot_download

from models import verify
from tests.conftest import ROOT
from tests.support.local_hub import LocalHub

REPO = "org/model"
FILES = {  # real files of this repository, served as a model repo
    "catalog.toml": ROOT / "models" / "catalog.toml",
    "machines/epyc.json": ROOT / "tests" / "fixtures" / "machines" / "this-machine-linux-epyc-vm" / "inputs.json",
}


@pytest.fixture
def hub():
    with LocalHub({REPO: FILES}) as served:
        yield served


@pytest.fixture
def no_symlinks(monkeypatch):
    monkeypatch.setattr(file_download, "are_symlinks_supported", lambda *_a, **_k: False)


def download(hub: LocalHub, cache: Path) -> Path:
    return Path(snapshot_download(REPO, cache_dir=cache, endpoint=hub.url))


def damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the hash can tell
    path.write_bytes(bytes(data))


def heads(hub: LocalHub) -> int:
    return sum(1 for s in hub.log if s.method == "HEAD")


def test_a_fresh_download_without_symlinks_is_checked(hub, no_symlinks, tmp_path):
    folder = download(hub, tmp_path / "cache")
    files = sorted(p for p in folder.rglob("*") if not p.is_dir())
    assert files and not any(p.is_symlink() for p in files)  # the files themselves, in snapshots/
    assert not any(p.is_file() for p in (folder.parents[1] / "blobs").iterdir())  # moved, not copied
    ledger = tmp_path / "verified.json"

    before = heads(hub)
    assert verify.check(folder, ledger, endpoint=hub.url) == []  # etags from the hub, as hf_hub_download gets them
    assert heads(hub) - before == len(files)
    assert all(f"|{hub._sha[(REPO, n)]}|" in json.dumps(json.loads(ledger.read_text())) for n in FILES)

    before = heads(hub)
    assert verify.check(folder, ledger) == [] and heads(hub) == before  # next start: the ledger, no network

    damage(folder / "catalog.toml")
    (bad,) = verify.check(folder, ledger)  # offline: the etag recorded on the first check names it
    assert bad.path == folder / "catalog.toml" and "does not match its hash" in bad.why
    assert bad.blob.name == hub._sha[(REPO, "catalog.toml")]

    verify.remove([bad])
    assert not bad.path.exists() and (folder / "machines" / "epyc.json").is_file()  # only the bad file goes
    assert download(hub, tmp_path / "cache") == folder
    assert verify.check(folder, ledger) == []


def test_a_file_copied_from_a_cached_blob_is_checked_offline(hub, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    folder = download(hub, cache)  # with symlinks: blobs/ holds the files
    (folder / "catalog.toml").unlink()
    monkeypatch.setattr(file_download, "are_symlinks_supported", lambda *_a, **_k: False)
    assert download(hub, cache) == folder  # the blob is there: huggingface_hub copies it
    copy = folder / "catalog.toml"
    assert copy.is_file() and not copy.is_symlink()
    assert (folder.parents[1] / "blobs" / hub._sha[(REPO, "catalog.toml")]).is_file()

    ledger = tmp_path / "verified.json"
    before = heads(hub)
    assert verify.check(folder, ledger) == [] and heads(hub) == before  # the blob named by its hash is its source
    damage(copy)
    (bad,) = verify.check(folder, ledger)
    assert bad.path == copy


def test_a_moved_file_no_one_can_name_is_left_alone_and_the_hub_asked_once(hub, no_symlinks, tmp_path):
    folder = download(hub, tmp_path / "cache")
    damage(folder / "catalog.toml")
    ledger = tmp_path / "verified.json"
    assert verify.check(folder, ledger) == []  # no endpoint: never touches the network, cannot tell
    hub.down = True
    before = heads(hub)
    assert verify.check(folder, ledger, endpoint=hub.url) == []
    assert heads(hub) - before == 1  # an unreachable hub is asked once per check, not once per file
    hub.down = False
    (bad,) = verify.check(folder, ledger, endpoint=hub.url)
    assert bad.path == folder / "catalog.toml"


def test_a_symlinked_cache_is_checked_as_before(hub, tmp_path):
    folder = download(hub, tmp_path / "cache")
    link = folder / "machines" / "epyc.json"
    assert link.is_symlink()
    ledger = tmp_path / "verified.json"
    assert verify.check(folder, ledger) == []
    damage(link.resolve())
    (bad,) = verify.check(folder, ledger)
    assert bad.path == link and bad.blob == link.resolve()
    link.resolve().unlink()
    (gone,) = verify.check(folder, ledger)
    assert gone.why == "its blob is missing"
