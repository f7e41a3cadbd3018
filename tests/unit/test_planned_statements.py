"""Every built-in job, rollup and tenant app plans to the statements recorded in planned_statements.json (made
by tests/planned_jobs.py before the planner moved to its own package): moving or reshaping the planner changes
no plan."""

from __future__ import annotations

import json

import pytest

from tests.planned_jobs import RECORDING, planned_statements

RECORDED = json.loads(RECORDING.read_text())
PLANNED = planned_statements()


def test_the_recording_has_every_case_and_nothing_else():
    assert sorted(PLANNED) == sorted(RECORDED)


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_a_plan_is_the_recorded_one_statement_by_statement(case):
    for setting, statements in RECORDED[case].items():
        assert len(PLANNED[case][setting]) == len(statements), setting
        for i, (now, then) in enumerate(zip(PLANNED[case][setting], statements, strict=True)):
            assert now == then, f"{case}, {setting}: statement {i} differs"
