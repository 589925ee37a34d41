"""Is a text cut at the length limit the start of some JSON value? What a grammar-held answer must be when it
did not end by itself (an answer that ended must parse whole)."""

from __future__ import annotations

import json

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

