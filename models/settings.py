"""Settings read once: where the cache lives and whether the network may be used."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants as hf_constants


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    home: Path  # the app's own cache: embedded model, compiled-model cache
    offline: bool  # --offline or HF_HUB_OFFLINE=1: use only what is cached
    hf_endpoint: str  # HF_ENDPOINT (huggingface_hub reads it too)
    hf_cache: Path = Path(hf_constants.HF_HUB_CACHE)  # the standard cache: HF_HOME / HF_HUB_CACHE
    hub_timeout_s: float = 3.0
    parallel: int | None = None  # --parallel: answers at once on a batching engine (None: from the device)
    # --draft: "" off (--no-draft), "auto" (the app's default) the catalog's paired draft model when it costs neither
    # JSON answers nor memory, "always" that draft even at the cost of JSON answers, or a draft model folder (forced)
    draft: str = ""
    prompt_lookup: bool = False  # --prompt-lookup: prompt-lookup decoding (ignored when a draft runs)

    @property
    def embedded_dir(self) -> Path:
        return self.home / "embedded"

    @property
    def compile_cache_dir(self) -> Path:
        return self.home / "compiled"


def default_home() -> Path:
    """The app's own cache: PHI3PC_HOME, else ~/.cache/phi3-aipc (the probe keeps its CPU reading there too)."""
    return Path(os.environ.get("PHI3PC_HOME") or Path.home() / ".cache" / "phi3-aipc")


def load_settings(offline: bool = False, home: str | os.PathLike | None = None,
                  hf_cache: str | os.PathLike | None = None, hf_endpoint: str | None = None,
                  parallel: int | None = None, draft: str = "", prompt_lookup: bool = False) -> Settings:
    return Settings(
        home=Path(home) if home else default_home(),
        offline=offline or _truthy(os.environ.get("HF_HUB_OFFLINE")) or hf_constants.HF_HUB_OFFLINE,
        hf_endpoint=hf_endpoint or os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT,
        hf_cache=Path(hf_cache) if hf_cache else Path(hf_constants.HF_HUB_CACHE),
        parallel=parallel,
        draft=draft,
        prompt_lookup=prompt_lookup,
    )


def home_problem(home: Path) -> str:
    """Why the app's home cannot be used at all (a file in the way, a folder that cannot be made), in one line;
    "" when it can. A home that exists but is read-only still runs what is cached there (start-up says so)."""
    for part in [home, *home.parents]:
        if part.exists():
            if not part.is_dir():
                return (f"the app's home {home} cannot be used: {part} is a file, not a folder. Set PHI3PC_HOME to "
                        "a folder you can write (the default is ~/.cache/phi3-aipc)")
            break
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return (f"the app's home {home} cannot be made ({err.strerror or err}). Set PHI3PC_HOME to a folder you "
                "can write (the default is ~/.cache/phi3-aipc)")
    return ""
