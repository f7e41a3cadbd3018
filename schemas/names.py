"""What a tenant or app name is: one rule for the command line, the jobs, the asset files and the app registry.

A tenant name becomes part of Kafka topic names (`<tenant>.sensors.alarms`, `<tenant>.results.app_<app>`), of
consumer groups, Flink job names and folders, and a value in Cassandra rows. Kafka allows topics of up to 249
characters from [A-Za-z0-9._-]; '.' separates a topic's parts here, so it is not allowed in a name (tenant
`a.sensors` would own another's topics); a leading '-' reads as a command-line flag and Kafka keeps names that
start with '_' for its own topics; ASCII only, so that no two names look alike.
"""

from __future__ import annotations

import re
from collections import Counter

from pipeline.errors import SchemaError

NAME_MAX = 64
MAX_NAMES = 1_000  # names in one list, such as the tenants of one job
NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{NAME_MAX - 1}}}")
# A Cassandra keyspace name that needs no quoting.
KEYSPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")
_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")


def shown(value: str, limit: int = 40) -> str:
    """`value` quoted for a one-line message: control characters escaped, a long value cut short."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value):,} characters)"


def name_problem(value: object, what: str = "tenant") -> str | None:
    """Why `value` is no tenant (or app) name, or None if it is one."""
    if not isinstance(value, str):
        return f"{what} must be text, not {type(value).__name__}"
    if not value:
        return f"{what} is empty: name it with letters, digits, '-' or '_'"
    if not _CHARACTERS.fullmatch(value):
        return f"{what} {shown(value)} must be letters, digits, '-' or '_'"
    if len(value) > NAME_MAX:
        return f"{what} {shown(value)} is longer than {NAME_MAX} characters"
    if not NAME.fullmatch(value):
        return f"{what} {shown(value)} must start with a letter or digit"
    return None


def check_name(value: str, what: str = "tenant") -> str:
    """`value` if it is a tenant or app name; ValueError saying why not."""
    if problem := name_problem(value, what):
        raise SchemaError(problem)
    return value


def check_names(values: object, what: str = "tenant") -> tuple[str, ...]:
    """Tenant names, at least one, each once; ValueError naming the first problem."""
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise SchemaError(f"{what}s must be a list of names, not {type(values).__name__}")
    if len(values) > MAX_NAMES:
        raise SchemaError(f"name at most {MAX_NAMES:,} {what}s, not {len(values):,}")
    names = tuple(check_name(v, what) for v in values)
    if not names:
        raise SchemaError(f"name at least one {what}, e.g. acme,globex")
    if twice := sorted(n for n, count in Counter(names).items() if count > 1):
        several = len(twice) > 1
        raise SchemaError(f"{what}{'s' * several} {', '.join(twice[:3])}{' ...' * (len(twice) > 3)} "
                         f"{'are' if several else 'is'} named more than once")
    return names
