"""The command line's arguments (standard library only: launch.py reads them before anything is installed)."""

from __future__ import annotations

import argparse
import re
from urllib.parse import urlsplit


def _queue_places(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of places, 0 or more, not {text!r}")
    return int(text)


def _host_name(text: str) -> str:
    name = text.strip().lower().rstrip(".")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", name):
        raise argparse.ArgumentTypeError(f"expected a host name such as host.docker.internal, not {text!r}")
    return name


def _origin(text: str) -> str:
    """A web origin, scheme://host[:port], as a browser sends it; never "*" (any site)."""
    parts = urlsplit(text.strip().lower().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or "*" in text:
        raise argparse.ArgumentTypeError(f"expected one origin such as http://localhost:3000 (no '*', no path), "
                                         f"not {text!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _at_least(low: int):
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < low:
            raise argparse.ArgumentTypeError(f"expected a whole number, {low} or more, not {text!r}")
        return int(text)

    return parse


class _Models(argparse.Action):
    """`--model` keeps its last value (the one model to run); `--bench` measures every one given (`models`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.models = [*(getattr(namespace, "models", None) or []), values]


def _serving(serve) -> None:
    """Where and how the app serves: address, LAN mode and credentials, limits, other hosts and sites, the log."""
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; any non-loopback address is LAN mode, as --lan)")
    serve.add_argument("--lan", action="store_true",
                       help="share on the local network (binds 0.0.0.0; every request needs credentials)")
    serve.add_argument("--port", type=int, default=7860, help="port; the next free one is used if taken")
    serve.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    serve.add_argument("--max-request-bytes", type=int, default=1_000_000, metavar="N",
                       help="the largest request body accepted, page and API (default 1000000; larger: HTTP 413)")
    serve.add_argument("--parallel", type=int, default=None, metavar="N",
                       help="answers generated together (continuous batching; default 4 on a CPU or GPU, 1 on an NPU)")
    serve.add_argument("--max-queue", type=_queue_places, default=16, metavar="N",
                       help="how many questions may wait behind the one being answered (default 16)")
    serve.add_argument("--allow-host", action="append", type=_host_name, default=[], metavar="NAME",
                       help="another name this server answers to (repeatable), e.g. host.docker.internal for Open "
                            "WebUI in Docker; only the names of this machine are accepted otherwise")
    serve.add_argument("--allow-origin", action="append", type=_origin, default=[], metavar="ORIGIN",
                       help="a web page's origin allowed to call the API from a browser (CORS, repeatable), e.g. "
                            "http://localhost:3000; never '*'")
    serve.add_argument("--access-log", action="store_true",
                       help="print one line per request: method, path, status, tokens, time (never bodies or keys)")
    serve.add_argument("--auth", action="append", metavar="USER:PASS",
                       help="LAN mode: a guest login (repeatable); without --auth or --auth-file a password "
                            "is generated and printed once")
    serve.add_argument("--auth-file", metavar="FILE", help="LAN mode: guest logins, one USER:PASS per line")
    serve.add_argument("--admin", action="append", metavar="USER:PASS",
                       help="LAN mode: a host login, who may also switch models (repeatable)")
    serve.add_argument("--api-key", action="append", metavar="KEY",
                       help="LAN mode: a Bearer key for the API (repeatable; default: one generated and printed)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launch.py",
        description="Run Microsoft Phi-3 on this PC's NPU, GPU or CPU and chat with it in the browser.",
    )
    _serving(p.add_argument_group("serving"))
    choose = p.add_argument_group("choosing the model")
    choose.add_argument("--model", metavar="ID|PATH", action=_Models,
                        help="a catalog id, or a GGUF file / model folder (with --bench: repeatable)")
    choose.add_argument("--device", choices=["auto", "cpu", "gpu", "npu", "dml"], default="auto",
                        help="run on this device kind (default: the policy decides)")
    choose.add_argument("--prefer", choices=["auto", "fastest", "efficient", "quality"], default="auto",
                        help="auto (efficient on battery, fastest on AC), fastest, efficient (NPU first), or "
                             "quality (the best model that fits, Phi-4-mini included)")
    choose.add_argument("--draft", metavar="auto|always|PATH", default="auto",
                        help="speculative decoding on a CPU or GPU with OpenVINO GenAI (default auto: the catalog's "
                             "paired draft model, FastDraft for Phi-3-mini, fetched when missing, unless it would cost "
                             "JSON answers or memory); always: that draft even if JSON answers are then refused; or a "
                             "draft model folder with the same tokenizer")
    choose.add_argument("--no-draft", dest="draft", action="store_const", const="",
                        help="no speculative decoding")
    choose.add_argument("--prompt-lookup", action="store_true",
                        help="prompt-lookup decoding on a CPU or GPU with OpenVINO GenAI: faster rewrites, summaries "
                             "and code edits (answers are the same)")
    choose.add_argument("--offline", action="store_true",
                        help="never touch the network: cached artifacts or the embedded model only")
    choose.add_argument("--probe-file", metavar="FILE",
                        help="use a recorded machine profile (from --probe) instead of this machine")
    once = p.add_argument_group("one-shot commands")
    once.add_argument("--probe", action="store_true", help="print this machine's profile as JSON and exit")
    once.add_argument("--explain", action="store_true", help="print the ranked candidates with reasons and exit")
    once.add_argument("--json", action="store_true", help="with --explain: print JSON")
    once.add_argument("--ask", metavar="PROMPT", help="stream one answer to the terminal, print its figures, exit")
    once.add_argument("--max-new-tokens", type=int, default=512, help="answer length limit of --ask (default 512)")
    once.add_argument("--convert", metavar="SOURCE",
                      help="convert a hub id or a local checkpoint folder (with --to); installs the "
                           "conversion tools on first use (about 1.5 GB)")
    once.add_argument("--to", choices=["openvino-int4", "openvino-fp16", "openvino-npu", "openvino-npu-gq",
                                       "onnx-int4-cpu", "onnx-int4-dml"], help="the format --convert produces")
    once.add_argument("--setup-only", action="store_true", help="create or refresh .venv and exit")
    bench = p.add_argument_group("benchmark (--bench)")
    bench.add_argument("--bench", action="store_true",
                       help="measure every engine and device here (the cached models and the embedded one, or "
                            "each --model), write report.json and report.png, print the report's path")
    bench.add_argument("--prompt-tokens", type=_at_least(16), default=512, metavar="N",
                       help="with --bench: the long prompt's length in tokens (default 512)")
    bench.add_argument("--new-tokens", type=_at_least(2), default=128, metavar="M",
                       help="with --bench: tokens generated per run (default 128)")
    bench.add_argument("--runs", type=_at_least(1), default=3, metavar="R",
                       help="with --bench: interleaved runs after one warm-up (default 3)")
    bench.add_argument("--no-save", action="store_true",
                       help="with --bench: keep the figures out of the model ranking (a quick look; only the report)")
    bench.add_argument("--out", metavar="DIR",
                       help="with --bench: the report's folder (default: a new one under the app home's bench/)")
    once.add_argument("--test", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                      help="install the test requirements and run the test suite (extra args go to pytest)")
    p.set_defaults(models=None)
    return p
