"""The one set of checks for user input, in one message style (scikit-learn's):

    The 'lr' parameter of TrainConfig must be a float > 0. Got -1 instead.

Every check raises `ConfigError` (the command line exits 2). `coerce` reads a value typed on the
command line (``--set KEY=VALUE``, carried as `Text`) against the annotation of the parameter it is
for, so that ``batch_norm=False`` is a bool and ``bidirectional=yes`` is refused by name instead of
failing deep inside torch. Values given from Python are left to the constructors' own checks.
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import math
import numbers
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from .errors import ConfigError


def fail(owner: str, name: str, rule: str, value: Any) -> ConfigError:
    """The error for parameter `name` of `owner` that breaks `rule`."""
    shown = repr(value) if isinstance(value, str) else value
    return ConfigError(f"The '{name}' parameter of {owner} must be {rule}. Got {shown} instead.")


def check_int(owner: str, name: str, value: Any, *, minimum: int | None = None, optional: bool = False) -> None:
    if optional and value is None:
        return
    # numbers.Integral takes NumPy's integers too
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (minimum is not None and value < minimum):
        rule = "an int" + (f" >= {minimum}" if minimum is not None else "") + (" or None" if optional else "")
        raise fail(owner, name, rule, value)


def check_float(owner: str, name: str, value: Any, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    """`value` is a finite real number within the bounds (open or closed)."""
    if optional and value is None:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            rule = f"a float in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            rule = f"a float {'>' if low_open else '>='} {low}"
        elif high is not None:
            rule = f"a float {'<' if high_open else '<='} {high}"
        else:
            rule = "a finite float"
        raise fail(owner, name, rule + (" or None" if optional else ""), value)


def check_choice(owner: str, name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise fail(owner, name, f"one of {', '.join(map(repr, choices))}", value)


# ---------------------------------------------------------------------------------------------
# Values typed on the command line, read against a parameter's annotation


def _describe(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return "a bool (true or false)"
    if annotation is int:
        return "an int"
    if annotation is float:
        return "a float"
    if annotation is str:
        return "a string"
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return f"one of {', '.join(map(repr, args))}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
        inner = args[0] if args else Any
        return f"a list of {_describe(inner).removeprefix('an ').removeprefix('a ')}s" if inner is not Any \
            else "a list"
    return "a JSON value"


def _parse_text(text: str) -> Any:
    """A command-line word as a value: JSON, or Python's spelling of True/False/None; else the text."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    spelled = {"true": True, "false": False, "none": None, "null": None}
    return spelled.get(text.strip().lower(), text)


def _fits(value: Any, annotation: Any) -> tuple[bool, Any]:
    """Whether `value` fits `annotation`, and the value converted (an int where a float is asked, a
    list for a sequence)."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True, value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if annotation is str:
        return isinstance(value, str), value
    if origin is typing.Literal:
        return value in args, value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            ok, converted = _fits(value, option)
            if ok:
                return True, converted
        return False, value
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False, value
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return False, value
            pairs = list(zip(value, args))
        else:
            inner = args[0] if args else Any
            pairs = [(v, inner) for v in value]
        converted = []
        for item, inner in pairs:
            ok, item = _fits(item, inner)
            if not ok:
                return False, value
            converted.append(item)
        return True, converted
    if isinstance(annotation, type):
        return isinstance(value, annotation), value
    return True, value


class Text(str):
    """A value as typed on the command line, to be read as the type of the parameter it sets."""


def coerce(owner: str, name: str, value: Any, annotation: Any) -> Any:
    """A command-line `Text` read as `annotation`'s type, refused with the parameter's name, the
    expected type and the value when it fits none; any other value is returned as given."""
    if not isinstance(value, Text):
        return value
    value = str(value)
    parsed = _parse_text(value)
    # a plain word is kept as text when text is accepted ("gelu"); parsed otherwise ("false", "[16, 32]")
    candidates = [value, parsed] if parsed is value else [parsed, value]
    if "," in value and not value.lstrip().startswith("["):
        candidates.append([_parse_text(part.strip()) for part in value.split(",")])
    for candidate in candidates:
        ok, converted = _fits(candidate, annotation)
        if ok:
            return converted
    raise fail(owner, name, _describe(annotation), value)


def annotations_of(function: Callable) -> dict[str, Any]:
    """The resolved annotations of `function`'s parameters (strings under postponed evaluation); for a
    class, those of its constructor. An annotation that cannot be resolved here (a type imported only
    for type checking, such as a DataFrame) is `Any`: its values are taken as given."""
    target = function.__init__ if isinstance(function, type) else function
    namespace = getattr(target, "__globals__", {})
    hints: dict[str, Any] = {}
    for name, parameter in inspect.signature(target).parameters.items():
        annotation = parameter.annotation
        if annotation is inspect.Parameter.empty:
            hints[name] = Any
            continue
        # one parameter at a time, so that one unresolvable annotation leaves the others typed
        holder = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            hints[name] = typing.get_type_hints(holder, globalns=namespace)[name]
        except Exception:
            hints[name] = Any
    return hints


def coerce_kwargs(owner: str, function: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every value of `kwargs` checked (and command-line text read) against `function`'s annotations."""
    hints = annotations_of(function)
    return {name: coerce(owner, name, value, hints.get(name, Any)) for name, value in kwargs.items()}
