"""The alarm-rate oracle, for the tests: it lives in operators/oracle.py, since the `faults` command checks its
runs against it too. It shares nothing with the job's plan; keep it that way."""

from operators.oracle import *  # noqa: F403
