"""The contracts a job's parts fill: its window, its aggregates, and the stages it adds around the window or in
place of it. Job (pipeline/job.py) accepts only instances of these, so a part that does not fill its contract
is refused where it is given, not when Flink plans the SQL.

Each hook below is a public abstract method: a subclass that leaves one out cannot be made (TypeError at
construction). The hooks run while a job is planned (pipeline.plan), once per plan, in the submitting process;
an exception from one stops the planning and nothing reaches Flink.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from pipeline.job import Job
    from pipeline.validation import Rule


class Aggregate(ABC):
    """A value computed over a window's records, rendered as a Flink SQL aggregate expression."""

    sql_type: ClassVar[str] = "DOUBLE"  # its Flink SQL type, which a job without a result schema writes

    @abstractmethod
    def sql(self) -> str:
        """The aggregate expression over the window's records (e.g. `COUNT(*)`). Runs when the window's query is
        planned; an exception stops the planning."""


class Window(ABC):
    """How a job's on-time records are grouped in event time."""

    @abstractmethod
    def tvf_sql(self, table: str, time_column: str) -> str:
        """Flink's window table-valued function over `table` by `time_column`. Runs when the window's query is
        planned; an exception stops the planning."""


class BeforeWindow(ABC):
    """Views between a job's on-time records and its window.

    Their rows keep the source's columns, so that rows they reject become dead letters like any other.
    """

    @abstractmethod
    def views(self, job: Job, on_time: str) -> list[str]:
        """CREATE TEMPORARY VIEW statements over the view `on_time` (the on-time records, or the previous
        stage's window_input). Runs once when the plan's views are made; an exception stops the planning."""

    @abstractmethod
    def window_input(self, job: Job) -> str:
        """The view the next stage (or the window) reads. Runs while the views and the window's query are
        planned; an exception stops the planning."""

    @abstractmethod
    def rejected(self, job: Job) -> list[tuple[str, Rule]]:
        """(view, rule) pairs: the view's rows that the rule rejects go to the dead-letter topic. Runs when the
        dead-letter route is planned; an exception stops the planning."""


class AfterWindow(ABC):
    """Rows a job adds to the rows of its window, e.g. for windows in which a key had no records."""

    @abstractmethod
    def views(self, job: Job, windows: str) -> list[str]:
        """CREATE TEMPORARY VIEW statements over the view `windows` of the window's rows. Runs once when the
        plan's views are made; an exception stops the planning."""

    @abstractmethod
    def rows(self, job: Job, windows: str) -> str:
        """A query of every result row (the window's and the added ones), with the window's columns. Runs when
        the results route is planned; an exception stops the planning."""


@dataclass(frozen=True)
class ResultSink:
    """A results topic `<tenant>.results.<topic>` of records of the Avro `schema` that `query` selects:
    the schema's fields, then the tenant (which picks the topic). `key` names a text field whose value
    becomes the Kafka record key; without it the records have none."""

    topic: str
    schema: str
    query: str
    key: str = ""


class ResultStage(ABC):
    """Results a job computes itself from its on-time records, instead of a window of keyed aggregates."""

    @abstractmethod
    def views(self, job: Job, on_time: str) -> list[str]:
        """CREATE TEMPORARY VIEW statements over the view `on_time`. Runs once when the plan's views are made;
        an exception stops the planning."""

    @abstractmethod
    def sinks(self, job: Job, on_time: str) -> list[ResultSink]:
        """The job's results topics, each with the query of its records (over `on_time` and the views). Runs
        whenever the job's topics are named (planning, checking the plan, granting its principal's ACLs); an
        exception stops whichever of those asked."""

    @abstractmethod
    def parameters(self) -> dict[str, str]:
        """What the plan was made with that decides where its state lives: recorded with the job on a cluster,
        to check a resubmit from its savepoint (restore_problem). Runs when a job is submitted; an exception
        stops the submission."""

    @abstractmethod
    def restore_problem(self, parameters: Mapping[str, str]) -> str:
        """Why the state of a job planned with `parameters` would not restore into the same operators of this
        plan, or ''. Runs before a resubmit from a savepoint; a non-empty answer refuses the resubmit, an
        exception stops it."""
