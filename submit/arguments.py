"""The command line's argument types and parser: a bad value is refused in one line with exit code 2.

Every option that takes a tenant, an app name, a count or a duration uses one of the types here, so the
same words are accepted everywhere and nothing strange reaches a topic name, a folder or a server.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import NoReturn

from pipeline.errors import SubmitError
from schemas.names import KEYSPACE, check_name, check_names, shown

PROG = "tenantstream"
_WHOLE = re.compile(r"[0-9]{1,19}")
_DECIMAL = re.compile(r"([0-9]{1,19}(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


def one_line(text: str, limit: int = 2_000) -> str:
    """`text` on one printable line: line breaks and control characters escaped, cut at `limit`."""
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return flat if len(flat) <= limit else f"{flat[:limit]}..."


class CommandError(SubmitError):
    """A command cannot do what it was asked: its message is the one line printed, `exit_code` the exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = code


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, with its errors on one line: `tenantstream: run: error: <message> (see ... --help)`."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        prefix = f"{PROG}: {command}: error" if command else f"{PROG}: error"
        self.exit(2, f"{prefix}: {one_line(message)} (see `{self.prog} --help`)\n")


class Name:
    """One tenant (or app, or database) name, by schemas.names."""

    def __init__(self, what: str = "tenant") -> None:
        self.what = what
        self.__name__ = what  # argparse names the type in some of its messages

    def __call__(self, text: str) -> str:
        try:
            return check_name(text, self.what)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None


class Names(Name):
    """Comma-separated tenant names, at least one, each once: `acme,globex` (spaces after a comma are fine)."""

    def __call__(self, text: str) -> tuple[str, ...]:
        items = [item.strip(" ") for item in text.split(",")]
        if not any(items):
            raise argparse.ArgumentTypeError(f"name at least one {self.what}, e.g. acme,globex")
        try:
            return check_names(items, self.what)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None


class Matching(Name):
    """Text that `pattern` matches whole, such as a keyspace name or a Flink job id; `rule` says what it is."""

    def __init__(self, what: str, pattern: re.Pattern[str], rule: str) -> None:
        super().__init__(what)
        self.pattern, self.rule = pattern, rule

    def __call__(self, text: str) -> str:
        if not self.pattern.fullmatch(text):
            raise argparse.ArgumentTypeError(f"{self.what} {shown(text)} is not {self.rule}")
        return text


class Count:
    """A whole number in [low, high], written in ASCII digits."""

    def __init__(self, what: str, low: int = 1, high: int = 1_000_000) -> None:
        self.what, self.low, self.high = what, low, high
        self.__name__ = what

    def __call__(self, text: str) -> int:
        value = int(text) if _WHOLE.fullmatch(text) else None
        if value is None or not self.low <= value <= self.high:
            raise argparse.ArgumentTypeError(f"{self.what} is a whole number from {self.low:,} to {self.high:,}, "
                                             f"not {shown(text)}")
        return value


class Number:
    """A finite decimal number in [low, high], or in (low, high] if `above` (a rate or a duration above 0)."""

    def __init__(self, what: str, low: float = 0, high: float = 1e6, *, above: bool = False) -> None:
        self.what, self.low, self.high, self.above = what, low, high, above
        self.__name__ = what

    def __call__(self, text: str) -> float:
        value = float(text) if _DECIMAL.fullmatch(text) else math.nan
        if not (math.isfinite(value) and (value > self.low if self.above else value >= self.low)
                and value <= self.high):
            bounds = f"above {self.low:g}" if self.above else f"from {self.low:g}"
            raise argparse.ArgumentTypeError(f"{self.what} is a number {bounds} to {self.high:g}, "
                                             f"not {shown(text)}")
        return value


SHARE = Number("a share", 0, 1)
PARALLELISM = Count("parallelism", 1, 512)
WINDOW_SECONDS = Count("a window in seconds", 1, 7 * 86_400)
OUT_OF_ORDERNESS = Count("out-of-orderness in seconds", 0, 86_400)
MAX_BEHIND = Count("how far in seconds an event time may be behind its append time", 1, 7 * 86_400)
REFRESH_SECONDS = Number("seconds between refreshes", 0, 86_400, above=True)
KEYSPACE_NAME = Matching("keyspace", KEYSPACE, "a keyspace name: a letter, then up to 47 letters, digits or '_'")
# A job id goes into the cluster's REST addresses.
JOB_ID = Matching("job id", re.compile(r"[0-9a-f]{32}"),
                  "a Flink job id: 32 hex digits, as `tenantstream jobs list` prints them")
