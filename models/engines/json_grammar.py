"""Compact JSON for the engines' grammars. Both engines' JSON-schema grammars allow any run of whitespace between
JSON tokens, and a small greedy model takes it: newlines until the length limit, an answer that never parses
(issue 20: 11 of 12 schema answers parsed, 3 of 12 `json_object` answers). Here whitespace between tokens is at most
one space, as llama.cpp's schema grammar does, so an answer ends as the JSON ends.

- OpenVINO GenAI (xgrammar): its JSON-schema grammar has no whitespace setting in the pinned release (a
  structural tag's `max_whitespace_cnt` is ignored), so the schema becomes a regular expression with Outlines'
  own converter (outlines_core) and goes to the engine as `StructuredOutputConfig.regex`. A schema Outlines cannot
  turn into one stays the engine's own JSON-schema grammar (valid, whitespace unbounded).
- ONNX Runtime GenAI (llguidance): its JSON options, set in the schema's top-level `x-guidance` key.
"""

from __future__ import annotations

import json

WHITESPACE = r"[ ]?"  # between JSON tokens: nothing or one space
MAX_REGEX_CHARS = 1_000_000  # a schema of many optional keys can grow a regex past what is worth compiling


def compact_regex(schema: str) -> str | None:
    """The regex of the JSON documents valid against `schema` (JSON text), written compactly; None when
    Outlines cannot convert this schema (the caller keeps the engine's JSON-schema grammar)."""
    try:
        from outlines_core.json_schema import build_regex_from_schema
    except ImportError:  # a platform without its wheel: the engine's own JSON grammar
        return None
    try:
        regex = build_regex_from_schema(schema, WHITESPACE)
    except Exception:  # noqa: BLE001 - any schema it does not support: the engine's grammar takes it as it is
        return None
    if len(regex) > MAX_REGEX_CHARS:
        return None
    # Outlines excludes the C1 controls (U+0080-U+009F) from strings as a byte range; xgrammar's regex reads a
    # negated class byte-wise, warns on every compile and clamps it to 0x7F: exclude 0x7F as it would.
    return regex.replace(r"\x7F-\x9F", r"\x7F")


def llguidance_schema(schema: str) -> str:
    """`schema` with llguidance's compact JSON options (a JSON object is the only input JsonSchema allows)."""
    value = json.loads(schema)
    value.setdefault("x-guidance", {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "})
    return json.dumps(value, ensure_ascii=False)
