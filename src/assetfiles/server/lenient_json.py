"""Lenient JSON, as EnOS's own samples write ``enos-message`` parts.

EnOS's public Python samples build messages by string concatenation: single-quoted names and
strings, and ids spliced in without quotes (``{'assetId':G5M8Ojhd, 'time':1700000000000}``).
Neither JSON nor JSON5 accepts a bare word as a value; Gson's lenient mode, which EnOS's Java
stack uses, does. This parser accepts what Gson's lenient reader documents, minus what no EnOS
client sends (``=``/``=>`` separators, ``;`` between pairs, several top-level values):

- names and strings single-quoted, double-quoted or unquoted;
- an unquoted word is ``true``, ``false``, ``null``, a number if it reads as one, else a string;
- ``//``, ``#`` and ``/* */`` comments; a trailing comma before ``}`` or ``]``.

It is only tried after the standard parser refuses a message, and it bounds nesting depth, so a
hostile document cannot exhaust the stack.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 64
#: Characters that end an unquoted word (Gson's own list of literal terminators).
_WORD_END = frozenset("/\\;#={}[]:, \t\f\r\n")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class LenientJsonError(ValueError):
    """The text is not lenient JSON; the message says where."""


def parse_lenient(text: str) -> Any:
    parser = _Parser(text)
    value = parser.value(0)
    parser.skip_blank()
    if parser.at < len(text):
        raise parser.error("unexpected text after the value")
    return value


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def error(self, what: str) -> LenientJsonError:
        return LenientJsonError(f"{what} at character {self.at}")

    def skip_blank(self) -> None:
        text, end = self.text, len(self.text)
        while self.at < end:
            char = text[self.at]
            if char in " \t\r\n\f\ufeff":
                self.at += 1
            elif char == "#" or text.startswith("//", self.at):
                newline = text.find("\n", self.at)
                self.at = end if newline < 0 else newline + 1
            elif text.startswith("/*", self.at):
                close = text.find("*/", self.at + 2)
                if close < 0:
                    raise self.error("unterminated comment")
                self.at = close + 2
            else:
                return

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels")
        self.skip_blank()
        if self.at >= len(self.text):
            raise self.error("a value is missing")
        char = self.text[self.at]
        if char == "{":
            return self.object(depth)
        if char == "[":
            return self.array(depth)
        if char in "\"'":
            return self.quoted()
        return _word_value(self.word())

    def object(self, depth: int) -> dict[str, Any]:
        self.at += 1
        result: dict[str, Any] = {}
        while True:
            self.skip_blank()
            if self.peek() == "}":
                self.at += 1
                return result
            name = self.quoted() if self.peek() in ('"', "'") else self.word()
            self.skip_blank()
            if self.peek() != ":":
                raise self.error(f"':' expected after the name {name!r}")
            self.at += 1
            result[name] = self.value(depth + 1)
            if not self.separator("}"):
                return result

    def array(self, depth: int) -> list[Any]:
        self.at += 1
        result: list[Any] = []
        while True:
            self.skip_blank()
            if self.peek() == "]":
                self.at += 1
                return result
            result.append(self.value(depth + 1))
            if not self.separator("]"):
                return result

    def separator(self, close: str) -> bool:
        """After a member: True to read another, False when ``close`` ended the container."""
        self.skip_blank()
        char = self.peek()
        if char == ",":
            self.at += 1
            return True
        if char == close:
            self.at += 1
            return False
        raise self.error(f"',' or '{close}' expected")

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def quoted(self) -> str:
        quote = self.text[self.at]
        self.at += 1
        parts: list[str] = []
        text, end = self.text, len(self.text)
        start = self.at
        while self.at < end:
            char = text[self.at]
            if char == quote:
                parts.append(text[start : self.at])
                self.at += 1
                return "".join(parts)
            if char == "\\":
                parts.append(text[start : self.at])
                parts.append(self.escape())
                start = self.at
                continue
            self.at += 1
        raise self.error("unterminated string")

    def escape(self) -> str:
        self.at += 1  # the backslash
        char = self.peek()
        if char == "u":
            digits = self.text[self.at + 1 : self.at + 5]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise self.error("bad \\u escape")
            self.at += 5
            return chr(int(digits, 16))
        if char not in _ESCAPES:
            raise self.error("bad escape")
        self.at += 1
        return _ESCAPES[char]

    def word(self) -> str:
        start = self.at
        text, end = self.text, len(self.text)
        while self.at < end and text[self.at] not in _WORD_END:
            self.at += 1
        if self.at == start:
            raise self.error(f"unexpected {text[self.at]!r}" if self.at < end else "unexpected end")
        return text[start : self.at]


def _word_value(word: str) -> Any:
    if word == "true":
        return True
    if word == "false":
        return False
    if word == "null":
        return None
    try:
        return int(word)
    except ValueError:
        pass
    try:
        number = float(word)
    except ValueError:
        return word
    return word if math.isnan(number) or math.isinf(number) else number
