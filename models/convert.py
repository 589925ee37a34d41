"""The cookbook's conversions, run for real: optimum-cli for OpenVINO IR, the ONNX Runtime GenAI builder for ONNX.

    python launch.py --convert microsoft/Phi-3-mini-4k-instruct --to openvino-int4
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import AppError, ArtifactIncomplete
from .formats import missing_files


class ConversionFailed(AppError, RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    format: str  # "openvino-ir" | "onnx-genai"
    flags: tuple[str, ...]
    devices: tuple[str, ...]
    note: str


TARGETS: dict[str, Target] = {
    # The cookbook's INT4 flags. `--group-size-fallback adjust` changes nothing for Phi-3 (hidden size
    # 3072 divides by 128) and lets models whose sizes do not divide (the 576-wide test model) export.
    "openvino-int4": Target("openvino-ir", ("--weight-format", "int4", "--group-size", "128", "--ratio", "0.6",
                                            "--sym", "--group-size-fallback", "adjust"), ("cpu", "gpu"),
                            "OpenVINO IR, INT4 symmetric g128, 60 % of layers INT4 (the cookbook's flags)"),
    "openvino-fp16": Target("openvino-ir", ("--weight-format", "fp16"), ("cpu", "gpu"), "OpenVINO IR, FP16"),
    # The NPU needs symmetric INT4, channel-wise, on every layer (OpenVINO's NPU guide).
    "openvino-npu": Target("openvino-ir", ("--weight-format", "int4", "--sym", "--group-size", "-1",
                                           "--ratio", "1.0"), ("npu", "cpu", "gpu"),
                           "OpenVINO IR, INT4 symmetric channel-wise (NPU-ready)"),
    # The NPU guide's choice for models up to ~5B (its example is Phi-3.5-mini): symmetric INT4 in groups
    # of 128, every layer; more accurate than channel-wise, which is the NPU's fastest layout.
    # `--group-size-fallback adjust`: a no-op for Phi-3 (3072 divides by 128), as for openvino-int4.
    "openvino-npu-gq": Target("openvino-ir", ("--weight-format", "int4", "--sym", "--group-size", "128",
                                              "--ratio", "1.0", "--group-size-fallback", "adjust"),
                              ("npu", "cpu", "gpu"), "OpenVINO IR, INT4 symmetric group size 128 (NPU-ready)"),
    "onnx-int4-cpu": Target("onnx-genai", ("-p", "int4", "-e", "cpu"), ("cpu",), "ONNX Runtime GenAI, INT4, CPU"),
    # A DirectML build is not the CPU build with another provider: -e dml adds position_ids and
    # turns off past/present buffer sharing.
    "onnx-int4-dml": Target("onnx-genai", ("-p", "int4", "-e", "dml"), ("dml",), "ONNX Runtime GenAI, INT4, DirectML"),
}


def command(source: str, target: str, out: Path, cache: Path) -> list[str]:
    """The exact command line for one conversion. SOURCE is a hub id or a local checkpoint folder."""
    t = TARGETS[target]
    local = Path(source).expanduser().is_dir()
    if t.format == "openvino-ir":
        cli = shutil.which("optimum-cli", path=str(Path(sys.executable).parent)) or "optimum-cli"
        return [cli, "export", "openvino", "--model", source, "--task", "text-generation-with-past", *t.flags,
                str(out)]
    return [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i" if local else "-m", source,
            "-o", str(out), *t.flags, "-c", str(cache)]


def convert(source: str, target: str, out: Path, log=print) -> Path:
    """Run one conversion into `out` (built beside it, renamed when complete)."""
    if target not in TARGETS:
        raise ConversionFailed(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    from . import tools

    tools.ensure(log)
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    cache = out.with_name(out.name + ".cache")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = command(source, target, tmp, cache)
    log("running: " + " ".join(cmd))
    started = time.perf_counter()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise ConversionFailed(f"{target} conversion of {source} failed (exit {done.returncode}):\n{tail}")
    missing = missing_files(tmp, TARGETS[target].format)
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ArtifactIncomplete(f"{target} conversion of {source} finished without {', '.join(missing)}")
    (tmp / ".complete").write_text(f"{source}\n{target}\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    shutil.rmtree(cache, ignore_errors=True)
    log(f"{target}: done in {time.perf_counter() - started:.0f} s -> {out}")
    return out
