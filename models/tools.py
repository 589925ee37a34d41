"""The heavy conversion tools, installed on first use into the running environment."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements-convert.txt"
# What must import for each tool to work; checked through metadata, never by importing.
NEEDED = ("torch", "transformers", "optimum-intel", "nncf", "gguf", "onnx-ir", "onnx", "accelerate")
TORCH_PIN = "torch==2.13.0"


def missing() -> list[str]:
    out = []
    for dist in NEEDED:
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            out.append(dist)
    return out


def ensure(log=print) -> None:
    """Install torch (CPU build, pinned), then the rest with torch held, then drop torchvision.

    optimum-intel pulls a torchvision that breaks every transformers model import next to this
    torch ('operator torchvision::nms does not exist'); text models do not need it.
    """
    if not missing():
        return
    log(f"conversion tools missing ({', '.join(missing())}): installing {REQUIREMENTS.name} "
        "(PyTorch CPU, transformers, optimum-intel, NNCF: about 1.5 GB, once) ...")
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.check_call([*pip, TORCH_PIN])
    subprocess.check_call([*pip, "-r", str(REQUIREMENTS)])
    drop_torchvision(sys.executable)


def drop_torchvision(python: str) -> None:
    """optimum-intel may pull a torchvision that breaks every transformers import next to the pinned CPU torch
    ("operator torchvision::nms does not exist"); text models do not need it. Standard library only: launch.py
    calls it for its own set-up too, before the environment can import anything else."""
    subprocess.call([python, "-m", "pip", "uninstall", "-y", "-q", "torchvision"], stderr=subprocess.DEVNULL)
