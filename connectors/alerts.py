"""Alerts from a job's committed results, exactly once, against thresholds refreshed from MongoDB.

Why here and not in the job: the results are a small stream (one record per key and window), so
checking them in Python costs nothing next to the per-event work, and the tenant settings can
change without touching the running Flink job. Why a periodic refresh and not a change stream:
change streams need a MongoDB replica set, and FerretDB (our MongoDB here) has none; a refresh
every `refresh_s` seconds reads the tenant's settings whole, so a change applies to every result
checked after the next refresh, and so from the next window on.

Exactly once: each batch of results is turned into alerts inside one Kafka transaction that also
commits the consumer's offsets (consume-transform-produce), so a crash replays the batch and the
aborted transaction's alerts are never seen by read_committed readers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import Consumer, Producer

from connectors.kafka import client_settings
from connectors.kafka_access import authorize_job
from connectors.results import ResultFollower
from operators.alerts import AlertRule, alert_for
from schemas import codec

log = logging.getLogger(__name__)

ALERT_SCHEMA = "alert.v1"


def alerts_topic(tenant: str) -> str:
    return f"{tenant}.alerts"


class Alerter(ResultFollower):
    """Checks each committed result of `rule.job` for `tenants` and writes alerts to `<tenant>.alerts`."""

    name = "alerter"

    def __init__(self, bootstrap: str, rule: AlertRule, result_schema: str, tenants: Sequence[str],
                 settings_of: Callable[[str], Mapping[str, float]], refresh_s: float = 5.0) -> None:
        group = f"tenantstream.alerts.{rule.job}.{'+'.join(tenants)}"
        # Its own principal: the tenants' results and alerts topics, its group and its transactional id only.
        login = authorize_job(bootstrap, f"alerts.{rule.job}", tenants, "", group, f"{group}.")
        super().__init__(bootstrap, [f"{t}.results.{rule.job}" for t in tenants], group, result_schema, login)
        self.rule, self.tenants, self.settings_of, self.refresh_s = rule, list(tenants), settings_of, refresh_s
        self.settings: dict[str, Mapping[str, float]] = {}
        self.raised = 0
        self._refreshed_at = float("-inf")
        self._producer = Producer(client_settings(bootstrap, login, **{"transactional.id": f"{group}.tx",
                                                                       "enable.idempotence": True}))
        self._producer.init_transactions(30)

    def refresh(self) -> None:
        """Read every tenant's settings again (a tenant missing from the store gets no alerts)."""
        for tenant in self.tenants:
            try:
                settings = dict(self.settings_of(tenant))
            except LookupError as err:
                settings = {}
                log.warning("alerter: %s; no alerts for %s until it is loaded", err, tenant)
            if settings != self.settings.get(tenant):
                log.info("alerter: %s settings now %s", tenant, settings)
            self.settings[tenant] = settings
        self._refreshed_at = time.monotonic()

    def _handle(self, consumer: Consumer, messages: list) -> None:
        if time.monotonic() - self._refreshed_at >= self.refresh_s:
            self.refresh()
        self._producer.begin_transaction()
        try:
            for tenant, record in self.records(messages):
                alert = alert_for(self.rule, record, self.settings.get(tenant, {}))
                if alert is not None:
                    self._producer.produce(alerts_topic(tenant), key=alert["key"].encode(),
                                           value=codec.encode(ALERT_SCHEMA, alert))
                    self.raised += 1
            self._producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                       consumer.consumer_group_metadata(), 30)
            self._producer.commit_transaction(30)
        except BaseException:
            self._producer.abort_transaction(30)
            raise

    def _close(self) -> None:
        self._producer.flush(10)
