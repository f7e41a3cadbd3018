"""What a tenant's `app(stream)` gets in the sandbox: a stream that records what the app builds.

It has the builder methods of pipeline.job.Job that an app may use (key_by, window, aggregate) and
refuses the ones the platform keeps to itself. Its only output is the declarative spec (`to_spec`):
the keys, the window's size and each aggregate by name with its kind, its column and its condition as
a small expression tree. Only plain values of the library's own types are read, by exact type, so no
object of the tenant's (a subclass, a str subclass, something with methods) gets into the spec.
Standard library and operators only: it runs in the sandboxed child (submit/app_child.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from operators.aggregates import Count, CountIf, Max, Mean, Min, Share, Sum
from operators.conditions import Condition
from operators.windows import Tumbling

KINDS = {cls.__name__: cls for cls in (Count, CountIf, Share, Sum, Mean, Min, Max)}
WITH_CONDITION = ("CountIf", "Share")
OF_COLUMN = ("Sum", "Mean", "Min", "Max")
COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
MAX_CONDITION_CHARS = 4000
MAX_TOKENS = 200  # columns, numbers, operators, words and parentheses of one condition
MAX_DEPTH = 12  # NOTs and parentheses within one another in a condition
MAX_NUMBER_CHARS = 24
MAX_NAME = 64
MAX_KEYS = 8
MAX_AGGREGATES = 32

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)
_TOKEN = re.compile(r"\s*(?:`(?P<column>[A-Za-z][A-Za-z0-9_]*)`|(?P<number>-?\d+(?:\.\d+)?)"
                    r"|(?P<op><>|<=|>=|=|<|>)|(?P<word>AND|OR|NOT)\b|(?P<paren>[()]))", re.ASCII)


class SpecError(Exception):
    """What the app built is not a job the platform can run; the message says why."""


def _platform_only(name: str) -> Callable[..., Stream]:
    """A method of pipeline.job.Job that an app may not call: it names what the platform binds."""
    def refuse(self: Stream, *args: object, **kwargs: object) -> Stream:
        raise SpecError(f"stream.{name}(...): the platform binds the tenant's source and sinks, the app only "
                        "applies key_by(...), window(...) and aggregate(...)")
    return refuse


@dataclass(frozen=True)
class Stream:
    """The tenant's bound stream, as the app sees it in the sandbox."""

    stream: str
    keys: tuple = ()
    tumbling: object = None
    aggregates: tuple = ()

    def key_by(self, *columns: str) -> Stream:
        return dataclasses.replace(self, keys=columns)

    def window(self, window: Tumbling) -> Stream:
        return dataclasses.replace(self, tumbling=window)

    def aggregate(self, **aggregates: object) -> Stream:
        return dataclasses.replace(self, aggregates=tuple(aggregates.items()))

    source, validate, before_window, after_window, results_from, to_results = (
        _platform_only(name) for name in ("source", "validate", "before_window", "after_window", "results_from",
                                          "to_results"))


def to_spec(result: object) -> dict:
    """The declarative spec of the stream `app(stream)` returned. Raises SpecError."""
    if type(result) is not Stream:
        raise SpecError(f"app(stream) returned {type(result).__name__}, not the stream it was given: "
                        "return stream.key_by(...).window(...).aggregate(...)")
    missing = [part for part, present in (("key_by(...)", result.keys), ("window(...)", result.tumbling),
                                          ("aggregate(...)", result.aggregates)) if not present]
    if missing:
        raise SpecError(f"app returned a job without {', '.join(missing)}: apply .key_by(...), "
                        ".window(...) and .aggregate(...) to the stream")
    if len(result.keys) > MAX_KEYS or len(result.aggregates) > MAX_AGGREGATES:
        raise SpecError(f"a job has at most {MAX_KEYS} keys and {MAX_AGGREGATES} aggregates")
    for key in result.keys:
        _identifier(key, "a key of key_by(...)")
    window = result.tumbling
    if type(window) is not Tumbling or type(window.size_ms) is not int:
        raise SpecError("the window must come from operators.windows (tumbling(minutes=..., seconds=...))")
    return {"stream": result.stream, "keys": list(result.keys), "window": {"size_ms": window.size_ms},
            "aggregates": [_aggregate(_identifier(name, "a result name"), aggregate)
                           for name, aggregate in result.aggregates]}


def _aggregate(name: str, aggregate: object) -> dict:
    kind = type(aggregate).__name__
    if KINDS.get(kind) is not type(aggregate):
        raise SpecError(f"aggregate {name!r}: {kind} is not one of the aggregates of operators.aggregates")
    spec: dict = {"name": name, "kind": kind}
    if kind in WITH_CONDITION:
        spec["condition"] = condition_tree(aggregate.condition, f"aggregate {name!r}")
    elif kind in OF_COLUMN:
        spec["column"] = _identifier(aggregate.column, f"aggregate {name!r}: the column")
        if aggregate.where is not None:
            spec["where"] = condition_tree(aggregate.where, f"aggregate {name!r}")
    return spec


def _plain(value: object, what: str, longest: int = MAX_NAME) -> str:
    if type(value) is not str:
        raise SpecError(f"{what} must be a plain str, not {type(value).__name__}")
    if len(value) > longest:
        raise SpecError(f"{what} is longer than {longest} characters")
    return value


def _identifier(value: object, what: str) -> str:
    if not _IDENTIFIER.fullmatch(_plain(value, what)):
        raise SpecError(f"{what} is a letter followed by letters, digits or '_', not {value!r}")
    return value


def condition_tree(condition: object, where: str) -> dict:
    """An operators.conditions.Condition's SQL as a tree of AND/OR/NOT over comparisons of columns and numbers:
    {"and": [...]}, {"or": [...]}, {"not": node}, {"cmp": op, "left": operand, "right": operand}, where an
    operand is {"column": name} or {"number": n}."""
    if type(condition) is not Condition:
        raise SpecError(f"{where}: its condition must be an operators.conditions.Condition")
    text = _plain(condition.sql, f"{where}: the condition's SQL", MAX_CONDITION_CHARS)
    return _Parser(_tokens(text, where), where).parse()


def _tokens(text: str, where: str) -> list[tuple[str, str]]:
    tokens, position, text = [], 0, text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise SpecError(f"{where}: {text[position:position + 20]!r} is not allowed in a condition (only "
                            "columns, numbers, comparisons, AND, OR, NOT and parentheses)")
        kind = match.lastgroup
        tokens.append((kind, match[kind]))
        position = match.end()
        if len(tokens) > MAX_TOKENS:
            raise SpecError(f"{where}: the condition has more than {MAX_TOKENS} parts")
    return tokens


class _Parser:
    """or := and (OR and)*; and := not (AND not)*; not := NOT not | ( or ) | operand op operand."""

    def __init__(self, tokens: list[tuple[str, str]], where: str) -> None:
        self.tokens, self.where, self.position = tokens, where, 0

    def parse(self) -> dict:
        tree = self.chain("OR", 0)
        if self.position < len(self.tokens):
            self.fail(f"unexpected {self.tokens[self.position][1]!r}")
        return tree

    def fail(self, message: str) -> NoReturn:
        raise SpecError(f"{self.where}: the condition is not a comparison of columns and numbers: {message}")

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "the end")

    def chain(self, word: str, depth: int) -> dict:
        parts = [self.chain("AND", depth) if word == "OR" else self.negation(depth)]
        while self.peek() == ("word", word):
            self.position += 1
            parts.append(self.chain("AND", depth) if word == "OR" else self.negation(depth))
        key = word.lower()
        flat = [item for part in parts for item in part.get(key, [part])]
        return flat[0] if len(flat) == 1 else {key: flat}

    def negation(self, depth: int) -> dict:
        """`depth`: how many NOTs and parentheses this stands in."""
        if depth > MAX_DEPTH:
            self.fail(f"nested deeper than {MAX_DEPTH}")
        kind, value = self.peek()
        if (kind, value) == ("word", "NOT"):
            self.position += 1
            return {"not": self.negation(depth + 1)}
        if (kind, value) == ("paren", "("):
            self.position += 1
            inner = self.chain("OR", depth + 1)
            if self.peek() != ("paren", ")"):
                self.fail("a '(' is not closed")
            self.position += 1
            return inner
        left = self.operand()
        kind, op = self.peek()
        if kind != "op":
            self.fail(f"expected a comparison, found {op!r}")
        self.position += 1
        return {"cmp": op, "left": left, "right": self.operand()}

    def operand(self) -> dict:
        kind, value = self.peek()
        self.position += 1
        if kind == "column":
            return {"column": value}
        if kind == "number" and len(value) <= MAX_NUMBER_CHARS:
            return {"number": float(value) if "." in value else int(value)}
        self.fail(f"expected a column or a number of at most {MAX_NUMBER_CHARS} characters, found {value!r}")
