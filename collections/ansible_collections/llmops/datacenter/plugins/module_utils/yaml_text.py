# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Deterministic block-style YAML from plain data, with the standard library only.

Runs on target hosts, which need not have PyYAML. The same data always yields the same bytes and
mapping keys keep their order, which is what makes the modules writing these files idempotent.
The text reads back as the same data in YAML 1.1 parsers (PyYAML, Prometheus' go-yaml v2) and
YAML 1.2 parsers (Grafana) alike:

- every string is double-quoted, so "on", "no", "1e3", "null" or "- x" stay strings;
- a mapping key is written bare only when it is an identifier that no parser reads as a boolean
  or null; any other key is quoted, and one too long for "key: value" is written as "? key";
- floats always carry a dot in the mantissa (YAML 1.1 reads 1e-05 as a string) and NaN and the
  infinities use YAML's own spellings.
"""

from __future__ import annotations

import math
import re

_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words YAML 1.1 parsers read as booleans or null when unquoted (compared lowercased).
_YAML_11_WORDS = {"y", "yes", "n", "no", "on", "off", "true", "false", "null"}
# YAML limits an implicit ("key: value") key to 1024 characters; longer keys are written explicitly.
_LONGEST_IMPLICIT_KEY = 1024
# The escapes JSON also uses, so ASCII-only output is what json.dumps writes for such strings.
_NAMED_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


class UnrepresentableValue(TypeError):
    """The data holds a value that is not a dict, list, string, number, boolean or None."""


def dump(data, ensure_ascii: bool = False, default=None) -> str:
    """Block-style YAML text for ``data``, ending in a newline.

    ``ensure_ascii`` escapes every non-ASCII character (as json.dumps does) instead of writing it
    as UTF-8. ``default``, like json.dumps' argument, turns a value of any other type into a string,
    number, boolean or None; without it such a value raises UnrepresentableValue.
    """
    return "\n".join(_lines(data, 0, ensure_ascii, default)) + "\n"


def quote(text: str, ensure_ascii: bool = False) -> str:
    """A double-quoted YAML scalar that every parser reads back as exactly ``text``."""
    quoted = ['"']
    for character in text:
        code = ord(character)
        if character in _NAMED_ESCAPES:
            quoted.append(_NAMED_ESCAPES[character])
        elif 0x20 <= code <= 0x7E or (not ensure_ascii and _printable_beyond_ascii(code)):
            quoted.append(character)
        elif code <= 0xFFFF:
            quoted.append(f"\\u{code:04x}")
        else:
            # One escape for the whole character: YAML does not join UTF-16 surrogate pairs.
            quoted.append(f"\\U{code:08x}")
    quoted.append('"')
    return "".join(quoted)


def _printable_beyond_ascii(code: int) -> bool:
    """Non-ASCII characters YAML allows unescaped inside a double-quoted scalar on one line."""
    if code in (0xFEFF, 0x2028, 0x2029):  # byte-order mark and Unicode line breaks
        return False
    return 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, exponent_marker, exponent = text.partition("e")
    if exponent_marker and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def _key(key, ensure_ascii: bool) -> str:
    key = str(key)
    # fullmatch: re.match with "$" would let a trailing newline through into a bare key.
    if _BARE_KEY.fullmatch(key) and key.lower() not in _YAML_11_WORDS:
        return key
    return quote(key, ensure_ascii)


def _is_inline(value) -> bool:
    return not isinstance(value, dict | list) or not value


def _inline(value, ensure_ascii: bool, default) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return quote(value, ensure_ascii)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if default is None:
        raise UnrepresentableValue(f"cannot write a value of type {type(value).__name__} to YAML")
    converted = default(value)
    if not isinstance(converted, str | int | float | bool | None):
        raise UnrepresentableValue(f"default() turned a {type(value).__name__} into a {type(converted).__name__}")
    return _inline(converted, ensure_ascii, None)


def _lines(value, indent: int, ensure_ascii: bool, default) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict) and value:
        lines = []
        for key, item in value.items():
            name = _key(key, ensure_ascii)
            if len(name) > _LONGEST_IMPLICIT_KEY:
                # "? key" then ": value" (an explicit key) has no length limit.
                lines.append(f"{pad}? {name}")
                name = ""
            if _is_inline(item):
                lines.append(f"{pad}{name}: {_inline(item, ensure_ascii, default)}")
            else:
                lines.append(f"{pad}{name}:")
                lines.extend(_lines(item, indent + 2, ensure_ascii, default))
        return lines
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            if _is_inline(item):
                lines.append(f"{pad}- {_inline(item, ensure_ascii, default)}")
            else:
                nested = _lines(item, indent + 2, ensure_ascii, default)
                lines.append(f"{pad}- {nested[0][indent + 2 :]}")
                lines.extend(nested[1:])
        return lines
    return [pad + _inline(value, ensure_ascii, default)]
