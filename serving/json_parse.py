"""Request bodies → JSON documents as TF Serving's `ParseJson` (json_tensor.cc) reads them:
rapidjson with kParseIterativeFlag, kParseNanAndInfFlag (`NaN`, `Infinity`, `-Infinity` are
numbers) and kParseStopWhenDoneFlag (what follows the document is ignored); a malformed body
gets rapidjson's message (`GetParseError_En`) and byte offset:
`JSON Parse error: Invalid value. at offset: 0`.

orjson reads well-formed bodies; Python's parser reads those with NaN/Infinity tokens or
trailing content, and its errors are mapped onto rapidjson's. Two deliberate differences
(docs/serving.md): nesting deeper than MAX_PARSE_DEPTH is refused where it is reached
(rapidjson's iterative parser has no limit), and a body that is not UTF-8 is refused
(rapidjson, without kParseValidateEncodingFlag, passes the bytes on).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import orjson

from serving.errors import ServingError
from serving.json_requests import debug_text

# The deepest document parsed at all (orjson's own limit); rapidjson has none.
MAX_PARSE_DEPTH = 1024
_NONFINITE_TOKENS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def parse_json(body: bytes) -> dict:
    """The request's top-level JSON object (`ParseJson`), with rapidjson's error messages."""
    if not body:
        raise ServingError("JSON Parse error: The document is empty")
    try:
        document = orjson.loads(body)  # fast; refuses NaN tokens and nesting over 1024
    except orjson.JSONDecodeError:
        document = _parse_with_nonfinite_tokens(body)
    if not isinstance(document, dict):
        raise ServingError(f"JSON Value: {debug_text(document)} Is not object")
    return document


# Python's json messages → rapidjson's (`GetParseError_En`), which TF Serving answers with.
_RAPIDJSON_MESSAGES = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}
# Brackets outside strings, for the depth bound and for which container a comma error is in.
_BRACKET_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _parse_with_nonfinite_tokens(body: bytes) -> Any:
    """Python's parser, which reads NaN/Infinity like rapidjson's kParseNanAndInfFlag and,
    like kParseStopWhenDoneFlag, ignores what follows the document. Its errors are given
    as rapidjson gives them: message and byte offset."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ServingError(f"JSON Parse error: Invalid encoding in string. at offset: "
                           f"{error.start}") from None
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise _parse_error("The document is empty.", text, len(text))
    too_deep_at = _depth_exceeded_at(text)
    if too_deep_at is not None:
        raise _too_deep(len(text[:too_deep_at].encode()))
    # Python's C scanner recurses once per level; MAX_PARSE_DEPTH levels must fit.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), MAX_PARSE_DEPTH + 200))
    try:
        document, _ = json.JSONDecoder(parse_constant=_NONFINITE_TOKENS.__getitem__).raw_decode(
            text, start)
    except json.JSONDecodeError as error:
        raise _rapidjson_error(error, text) from None
    return document


def _rapidjson_error(error: json.JSONDecodeError, text: str) -> ServingError:
    if error.msg == "Expecting ',' delimiter":
        in_array = _innermost_container(text, error.pos) == "["
        message = ("Missing a comma or ']' after an array element." if in_array else
                   "Missing a comma or '}' after an object member.")
        return _parse_error(message, text, error.pos)
    message = _RAPIDJSON_MESSAGES.get(error.msg, "Unspecific syntax error.")
    # rapidjson finds an unterminated string at the end of the input, not where it starts.
    position = len(text) if error.msg.startswith("Unterminated string") else error.pos
    return _parse_error(message, text, position)


def _parse_error(message: str, text: str, position: int) -> ServingError:
    """`ParseJson`'s error: the message and the byte offset where rapidjson stopped."""
    return ServingError(f"JSON Parse error: {message} at offset: "
                        f"{len(text[:position].encode())}")


def _too_deep(offset: int) -> ServingError:
    # A deliberate difference (docs/serving.md): rapidjson's iterative parser has no depth
    # limit; this server refuses a document where its nesting passes MAX_PARSE_DEPTH.
    return ServingError(f"JSON Parse error: nested deeper than {MAX_PARSE_DEPTH} levels at "
                        f"offset: {offset}")


def _depth_exceeded_at(text: str) -> int | None:
    """Where the nesting of the document `text` starts with first passes MAX_PARSE_DEPTH (a
    character index); what follows the document is not looked at, as the parser stops."""
    depth = 0
    for token in _BRACKET_OR_STRING.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_PARSE_DEPTH:
                return token.start()
        elif bracket in "]}":
            depth -= 1
            if depth == 0:
                return None
    return None


def _innermost_container(text: str, position: int) -> str | None:
    """The bracket ("[" or "{") of the innermost container open at `position`."""
    stack = []
    for token in _BRACKET_OR_STRING.finditer(text, 0, position):
        bracket = token.group()
        if bracket in "[{":
            stack.append(bracket)
        elif bracket in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else None
