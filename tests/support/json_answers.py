"""The JSON-answer tests' shared question and checks: a city schema, places to ask about, a hand check of the
schema, and whether a text cut at the length limit is the start of some JSON value (what a grammar-held answer
must be when it did not end by itself; an answer that ended must parse whole)."""

from __future__ import annotations

import json

PLACES = ["Paris", "Tokyo", "Berlin", "Rome"]
CITY = {"type": "object", "additionalProperties": False, "required": ["city", "country"],
        "properties": {"city": {"type": "string", "maxLength": 40}, "country": {"type": "string", "maxLength": 40}}}


def ask(place: str) -> list[dict]:
    return [{"role": "user", "content": f'Answer with a JSON object with the keys "city" and "country" for {place}.'}]


def valid_city(text: str) -> bool:
    """CITY checked by hand (no jsonschema package here): one JSON object, exactly these keys, string values."""
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return (isinstance(value, dict) and set(value) == {"city", "country"}
            and all(isinstance(v, str) and len(v) <= 40 for v in value.values()))


TAILS = ("", "null", ":null", "0", "e0", "0e0") + tuple(w[k:] for w in ("true", "false", "null") for k in range(1, 4))


def json_prefix(text: str) -> bool:
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and (not stack or stack.pop() != ch):
            return False
    closers = "".join(reversed(stack))
    head = text + ('"' if in_string else "")
    for start in (head, head.rstrip().removesuffix(",")):
        for tail in TAILS:
            try:
                json.loads(start + tail + closers)
                return True
            except ValueError:
                pass
    return False

