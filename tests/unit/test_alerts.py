"""The alert rule over one result record and the tenant's settings."""

from __future__ import annotations

from datetime import UTC, datetime

from operators.alerts import ALARM_RATE_ALERT, FLOW_BREACH_ALERT, alert_for

START, END = datetime(2026, 1, 1, 4, 0, tzinfo=UTC), datetime(2026, 1, 1, 4, 1, tzinfo=UTC)


def result(rate: float) -> dict:
    return {"tenant": "acme", "station_id": "bts-1", "datapoint_id": "dp-2", "window_start": START,
            "window_end": END, "fires": 3, "events": 5, "rate": rate}


def test_a_rate_above_the_tenants_threshold_raises_one_alert_naming_key_window_value_and_threshold():
    assert alert_for(ALARM_RATE_ALERT, result(0.6), {"alarm_rate_threshold": 0.5}) == {
        "tenant": "acme", "job": "alarm_rate", "key": "bts-1/dp-2", "window_start": START, "window_end": END,
        "metric": "rate", "value": 0.6, "threshold": 0.5}


def test_a_rate_at_or_below_the_threshold_raises_none():
    assert alert_for(ALARM_RATE_ALERT, result(0.5), {"alarm_rate_threshold": 0.5}) is None
    assert alert_for(ALARM_RATE_ALERT, result(0.1), {"alarm_rate_threshold": 0.5}) is None


def test_a_tenant_without_the_setting_gets_no_alerts():
    assert alert_for(ALARM_RATE_ALERT, result(1.0), {}) is None


def flow_result(readings: int, breaches: int) -> dict:
    return {"tenant": "acme", "sensor_id": "pump-1-flow", "window_start": START, "window_end": END,
            "readings": readings, "breaches": breaches}


def test_a_flow_window_with_more_breaches_than_the_tenants_share_raises_an_alert():
    alert = alert_for(FLOW_BREACH_ALERT, flow_result(10, 3), {"flow_breach_threshold": 0.2})
    assert (alert["key"], alert["metric"], alert["value"], alert["threshold"]) == ("pump-1-flow", "breach_share",
                                                                                  0.3, 0.2)
    assert alert_for(FLOW_BREACH_ALERT, flow_result(10, 2), {"flow_breach_threshold": 0.2}) is None


def test_a_flow_window_without_readings_raises_no_alert():
    assert alert_for(FLOW_BREACH_ALERT, flow_result(0, 0), {"flow_breach_threshold": 0.0}) is None
