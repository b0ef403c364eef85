"""Turn what is wrong with an input document into one `field.path: message` line per problem.

pydantic stops early in two places, and a user would fix one mistake only to meet the next one
on the following run:
- a model's `mode="after"` validators (cross-field rules such as "exactly one of max_nodes or
  nodes") run only when all of that model's fields validated;
- a container's validators (unique names across the list) run only when every item validated.
`validation_problems` runs the skipped item-level rules on what did validate, and the callers in
spec.py run their cross-item rules on the raw lists, so one run reports everything.

Messages never show a Python class name: pydantic's wording is replaced where it names one.
No imports from spec.py (spec.py imports this module).
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

_TYPE_WORDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping of keys to values",
}


def kind_of(value: Any) -> str:
    """What a YAML value is, in a user's words."""
    if value is None:
        return "empty"
    for python_type, word in _TYPE_WORDS.items():
        if type(value) is python_type:
            return word
    return "a value of an unsupported kind"


def document_problems(data: Any, key: str, other_key: str, kind: str, other_kind: str) -> list[str]:
    """Problems with the document as a whole: empty, not a mapping, or the other input file."""
    expected = f"expected a {kind} file: a mapping with the top-level key {key} (see docs/planner.md)"
    if data is None:
        return [f"the file is empty; {expected}"]
    if not isinstance(data, dict):
        return [f"the file holds {kind_of(data)}; {expected}"]
    if key not in data and other_key in data:
        return [f"this looks like a {other_kind} file (top-level key {other_key}), expected a {kind} file "
                f"(top-level key {key}); were the two files swapped?"]
    return []


def path_text(loc: tuple[Any, ...] | list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unwrap(annotation: Any) -> Any:
    """The non-None member of an Optional annotation, else the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class describing the value at `loc` inside a `root` document, if any."""
    annotation: Any = root
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            if typing.get_origin(annotation) is not list:
                return None
            annotation = typing.get_args(annotation)[0]
        else:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return None
            field = annotation.model_fields.get(part)
            if field is None:
                return None
            annotation = field.annotation
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        if isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            data = data[part]
        elif isinstance(part, str) and isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def message(err: dict[str, Any], root: type[BaseModel] | None = None) -> str:
    """One pydantic error in a user's words, naming accepted values where they are known."""
    kind, ctx = err["type"], err.get("ctx") or {}
    loc = tuple(err["loc"])
    if kind == "greater_than":
        return f"must be > {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"must be >= {_number(ctx['ge'])}"
    if kind == "less_than":
        return f"must be < {_number(ctx['lt'])}"
    if kind == "less_than_equal":
        return f"must be <= {_number(ctx['le'])}"
    if kind == "extra_forbidden":
        owner = model_at(root, loc[:-1]) if root is not None else None
        if owner is not None:
            return f"unknown field; accepted: {', '.join(owner.model_fields)}"
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        choices = re.fullmatch(r"\^\(([\w|.-]+)\)\$", pattern)
        if choices:
            return f"must be one of {', '.join(choices.group(1).split('|'))}"
        return f"must match the pattern {pattern}"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    if kind in ("model_type", "model_attributes_type", "dict_type", "dataclass_type", "is_instance_of"):
        return f"must be a mapping of keys to values, got {kind_of(err.get('input'))}"
    if kind == "list_type":
        return f"must be a list, got {kind_of(err.get('input'))}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, got {err.get('input')!r}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"must be a number, got {err.get('input')!r}"
    if kind in ("string_type", "string_sub_type"):
        return f"must be text, got {kind_of(err.get('input'))}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {err.get('input')!r}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"must list at least {least} {'entry' if least == 1 else 'entries'}"
    if kind == "too_long":
        return f"must list at most {ctx.get('max_length')} entries"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"must be at least {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    return str(err["msg"]).removeprefix("Value error, ")


def _lines(loc: tuple[Any, ...], text: str) -> list[str]:
    """A root-level rule may report several problems, one per line, each naming its own path."""
    where = path_text(loc)
    if not where:
        return [line for line in text.splitlines() if line.strip()]
    return [f"{where}: {line}" for line in text.splitlines() if line.strip()]


def format_validation_error(exc: ValidationError, root: type[BaseModel] | None = None) -> list[str]:
    """One line per pydantic error; errors at the document root carry their own paths."""
    lines: list[str] = []
    for err in exc.errors():
        lines += _lines(tuple(err["loc"]), message(err, root))
    return lines


def _skipped_model_rules(root: type[BaseModel], data: Any, errors: list[dict[str, Any]]) -> list[str]:
    """Run the after-validators pydantic skipped because a sibling field failed.

    Each such model is rebuilt without validation from its fields that did validate; a rule that
    reads a failed or missing field cannot judge and is left out (it runs on the next attempt).
    """
    failed = [tuple(err["loc"]) for err in errors]
    owners = {loc[:i] for loc in failed for i in range(1, len(loc))}
    lines: list[str] = []
    for prefix in sorted(owners, key=lambda p: (len(p), str(p))):
        if not prefix or prefix in failed:
            continue  # the root has its own cross-item rules; an error at prefix means its rules ran
        model = model_at(root, prefix)
        raw = _value_at(data, prefix)
        rules = [] if model is None else [
            d for d in model.__pydantic_decorators__.model_validators.values() if d.info.mode == "after"
        ]
        if not rules or not isinstance(raw, dict):
            continue
        bad_fields = {loc[len(prefix)] for loc in failed if loc[: len(prefix)] == prefix and len(loc) > len(prefix)}
        values = {k: v for k, v in raw.items() if k in model.model_fields and k not in bad_fields}
        instance = model.model_construct(**values)
        for name in bad_fields:
            instance.__dict__.pop(name, None)
        for rule in rules:
            try:
                rule.func(instance)
            except ValueError as exc:
                lines += _lines(prefix, str(exc))
            except (AttributeError, TypeError, KeyError):
                continue
    return lines


def validation_problems(root: type[BaseModel], data: Any, exc: ValidationError) -> tuple[list[str], bool]:
    """Every problem pydantic found plus the item rules it skipped; and whether the root's own
    rules ran (an error at the document root), so the caller knows to run them itself."""
    errors = exc.errors()
    lines = format_validation_error(exc, root) + _skipped_model_rules(root, data, errors)
    root_ran = any(tuple(err["loc"]) == () for err in errors)
    return lines, root_ran


def _order(line: str) -> tuple[str, int]:
    match = re.match(r"^(\w+)(?:\[(\d+)\])?", line)
    if not match:
        return ("", -1)
    return (match.group(1), int(match.group(2)) if match.group(2) is not None else -1)


def ordered(lines: list[str]) -> list[str]:
    """Without repeats, grouped by top-level field and item (document order within an item)."""
    unique = list(dict.fromkeys(lines))
    return sorted(unique, key=_order)


def repeated(names: list[Any]) -> list[str]:
    """The text names that occur more than once, sorted."""
    texts = [n for n in names if isinstance(n, str)]
    return sorted({n for n in texts if texts.count(n) > 1})


def quantity(value: Any) -> str:
    """A number for a message: 58.7908, not 58.790800000000004; whole numbers without a point."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return str(int(value))
    if abs(value) >= 1e6:
        return f"{value:.0f}"
    return f"{value:.6g}"


def field_of(item: Any, key: str) -> Any:
    """A field of a validated model or of the raw mapping it came from."""
    if isinstance(item, dict):
        return item.get(key)
    return getattr(item, key, None)
