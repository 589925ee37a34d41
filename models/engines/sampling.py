"""What a request asks of an engine, checked when made: the sampling settings and a JSON schema to hold the answer
to. A bad value raises InvalidSampling (or ResponseFormatError, InvalidText) naming its field, so it never reaches
an engine."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidSampling, check_text

MAX_SEED = 2**31 - 1  # ONNX Runtime GenAI takes a signed 32-bit seed; OpenVINO GenAI a size_t
# The bounds of each setting, (low, high), written once: Sampling checks them, the API's request model declares them.
TEMPERATURE = (0.0, 2.0)
TOP_P = (0.0, 1.0)  # more than 0
MAX_NEW_TOKENS = (1, 1_000_000)
SEED = (0, MAX_SEED)
PENALTY = (-2.0, 2.0)  # frequency_penalty and presence_penalty, OpenAI's range
MAX_STOP_STRINGS = 16
MAX_SCHEMA_CHARS = 100_000


FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal 32-bit float
GREEDY_BELOW = 1e-5  # a temperature this small picks the top token anyway (and would overflow 32-bit logits)


def _number(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidSampling(f"{name} must be a number, got {value!r}", name)
    if value < low or value > high or (low_open and value == low):
        bound = f"{'more than' if low_open else 'at least'} {low:g} and at most {high:g}"
        raise InvalidSampling(f"{name} must be {bound}, got {value!r}", name)
    if low_open and value - low < FLOAT32_TINY:  # the engines compute in 32-bit floats: it would be 0 there
        raise InvalidSampling(f"{name} must be at least {low + FLOAT32_TINY:.3g} (the engines use 32-bit floats), "
                              f"got {value!r}", name)


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSampling(f"{name} must be a whole number, got {value!r}", name)
    if not low <= value <= high:
        raise InvalidSampling(f"{name} must be between {low} and {high}, got {value}", name)


class ResponseFormatError(InvalidSampling):
    """The answer cannot be held to the asked format: a malformed schema, a schema the engine's grammar
    compiler rejects, or an engine without structured output. The API answers 400 on `response_format`."""

    param = "response_format"


@dataclass(frozen=True)
class JsonSchema:
    """The answer must be one JSON document valid against `schema`, the JSON text of a JSON Schema (a JSON
    object). The engine enforces it token by token (OpenVINO GenAI: StructuredOutputConfig through xgrammar;
    ONNX Runtime GenAI: guidance through llguidance). `JsonSchema.any_object()` is any JSON object."""

    schema: str
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.schema, str):
            raise ResponseFormatError(f"a JSON schema is given as JSON text, got {type(self.schema).__name__}")
        try:
            self.schema.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ResponseFormatError(f"the JSON schema is not valid Unicode text: a lone surrogate at character "
                                      f"{err.start}; send text encoded as UTF-8") from None
        if len(self.schema) > MAX_SCHEMA_CHARS:
            raise ResponseFormatError(f"the JSON schema is longer than {MAX_SCHEMA_CHARS} characters")
        try:
            value = json.loads(self.schema)
        except ValueError as err:
            raise ResponseFormatError(f"the JSON schema is not valid JSON: {err}") from None
        if not isinstance(value, dict):
            raise ResponseFormatError(f"a JSON schema must be a JSON object, got {self.schema[:80]}")

    @classmethod
    def of(cls, schema: Any, name: str = "") -> JsonSchema:
        """From a parsed schema (a dict); its key order is kept (it is the order the answer's keys come in)."""
        if not isinstance(schema, dict):
            raise ResponseFormatError(f"a JSON schema must be a JSON object, got {schema!r:.80}")
        try:
            text = json.dumps(schema, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ResponseFormatError(f"the JSON schema cannot be written as JSON: {err}") from None
        return cls(text, name)

    @classmethod
    def any_object(cls) -> JsonSchema:
        """OpenAI's {"type": "json_object"}: any JSON object, whatever its keys."""
        return cls('{"type": "object"}', "json_object")


@dataclass(frozen=True)
class Sampling:
    """How to pick the next tokens. Checked when made: a bad value never reaches an engine."""

    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k limit
    max_new_tokens: int = 512
    repetition_penalty: float = 1.0
    # OpenAI's penalties (-2..2): lower a token's log-probability once it appeared (presence) or for each time it
    # did (frequency); OpenVINO GenAI applies both, an engine without them refuses a non-zero value
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None  # None: a fresh random seed for every request
    stop: tuple[str, ...] = ()
    response_format: JsonSchema | None = None  # None: free text
    logprobs: bool = False  # report each chosen token's log-probability (Reply.logprobs), where the engine can

    def __post_init__(self):
        _number("temperature", self.temperature, *TEMPERATURE)
        _number("top_p", self.top_p, *TOP_P, low_open=True)
        _integer("top_k", self.top_k, 0, 1_000_000)
        _integer("max_new_tokens", self.max_new_tokens, *MAX_NEW_TOKENS)
        _number("repetition_penalty", self.repetition_penalty, 0.0, 10.0, low_open=True)
        _number("frequency_penalty", self.frequency_penalty, *PENALTY)
        _number("presence_penalty", self.presence_penalty, *PENALTY)
        if self.seed is not None:
            _integer("seed", self.seed, *SEED)
        if isinstance(self.stop, str) or not isinstance(self.stop, (tuple, list)):
            raise InvalidSampling(f"stop must be a list of strings, got {self.stop!r}")
        if len(self.stop) > MAX_STOP_STRINGS or not all(isinstance(s, str) and s for s in self.stop):
            raise InvalidSampling(f"stop takes up to {MAX_STOP_STRINGS} non-empty strings, got {list(self.stop)!r}")
        for text in self.stop:
            check_text("a stop string", text, "stop")
        object.__setattr__(self, "stop", tuple(self.stop))
        if not isinstance(self.logprobs, bool):
            raise InvalidSampling(f"logprobs must be true or false, got {self.logprobs!r}", "logprobs")
        if self.response_format is not None and not isinstance(self.response_format, JsonSchema):
            raise ResponseFormatError(f"response_format must be a JsonSchema, got {self.response_format!r:.80}")

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW
