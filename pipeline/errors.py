"""The project's own errors: one root, TenantstreamError, and one subclass per package, each raised with a
one-line message that names the place and the fix.

The command line (submit/cli.py) handles the whole family in one place: it prints the message (and `hint`)
on one line and exits with `exit_code`, 2 for input it refuses and 1 for a server or job that failed. Each
package base also derives from the built-in error its callers caught before (ValueError for refused input,
RuntimeError for a failure), so an `except ValueError` written for those still catches them.
"""

from __future__ import annotations


class TenantstreamError(Exception):
    """The root of the project's errors."""

    exit_code = 1  # what the command line exits with
    hint = ""  # what the command line adds to the message, e.g. how to start a missing server


class PipelineError(TenantstreamError, ValueError):
    """A job that cannot be declared or planned as asked (pipeline/): a broken contract, a missing part."""

    exit_code = 2


class OperatorError(TenantstreamError, ValueError):
    """An operator (a window, an aggregate, a period, a query) given values it cannot have (operators/)."""

    exit_code = 2


class SchemaError(TenantstreamError, ValueError):
    """A record, schema or asset document that is not what its schema says (schemas/)."""

    exit_code = 2


class JobError(TenantstreamError, ValueError):
    """A built-in job or rollup that cannot be made as asked (jobs/)."""

    exit_code = 2


class ConnectorError(TenantstreamError, RuntimeError):
    """A server (Kafka, Cassandra, the metadata store) that refused or did not answer (connectors/)."""


class SubmitError(TenantstreamError):
    """A command that cannot do what it was asked (submit/)."""


class StackSetupError(TenantstreamError, RuntimeError):
    """The local stack could not be installed, started or reached (stack/)."""


class DashboardError(TenantstreamError):
    """A login, token or WebSocket frame the dashboard refuses (dashboard/)."""

    exit_code = 2


class FaultsError(TenantstreamError, RuntimeError):
    """A fault that could not be struck or undone on the cluster profile (faults/)."""
