"""Every plan is checked before it runs: the built-in jobs' and tenant apps' plans pass as they are, and a real
plan with an attack spliced into it is refused with one line naming the table and the topic or option."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass

import pytest

from connectors.kafka_access import job_principal
from jobs.alarm_rate import alarm_rate_job
from jobs.flow_aggregates import flow_aggregates_job
from jobs.sensor_health import sensor_health_job
from operators.flow import LiveMetadata, metadata_from_assets
from pipeline.check import PlanRefused, check_plan, tokens
from pipeline.job import Job, RunSettings
from pipeline.plan import plan
from pipeline.sql import FLINK_SCRAM_LOGIN, Login, jaas_line
from pipeline.stages import BeforeWindow
from submit.simulate import flow_topology
from tests.planned_jobs import app_job, spec_app_job

TWO = ("acme", "globex")


def flow(tenants: tuple[str, ...], live: bool) -> Job:
    metadata = (LiveMetadata("mongodb://127.0.0.1:27017", "tenantstream") if live
                else metadata_from_assets(flow_topology(list(tenants)), tenants))
    return flow_aggregates_job(tenants, metadata)


def with_login(job: Job, settings: RunSettings) -> RunSettings:
    """`settings` with the job's own Kafka principal, as connectors.kafka_access.authorized gives it."""
    principal = job_principal(job.name, job.tenants, settings.group_id or job.default_group)
    return dataclasses.replace(settings, kafka_login=Login(principal, "d1e5" * 16))


JOBS = {
    "alarm_rate one tenant": lambda: alarm_rate_job(["acme"]),
    "alarm_rate two tenants": lambda: alarm_rate_job(TWO),
    "flow planned metadata": lambda: flow(TWO, live=False),
    "flow live metadata": lambda: flow(TWO, live=True),
    "health one N": lambda: sensor_health_job(TWO),
    "health three N": lambda: sensor_health_job(("acme", "globex", "initech"),
                                               silence_minutes=lambda t: {"acme": 5, "globex": 20}.get(t, 10)),
    "tenant app one tenant": lambda: app_job(),
    "tenant app several tenants": lambda: app_job(("acme", "globex", "initech")),
    "tenant app from its spec": spec_app_job,
}


@pytest.mark.parametrize("name", JOBS)
@pytest.mark.parametrize("settings", [RunSettings(), RunSettings("10.0.0.7:9094,10.0.0.8:9094", stop_at="latest"),
                                      RunSettings(group_id="bench.g1", stop_at="0:100,1:250",
                                                  watermark_emit="on-event")], ids=["default", "bounded", "group"])
@pytest.mark.parametrize("login", [False, True], ids=["plaintext", "scram"])
def test_every_built_in_and_app_plan_passes_unchanged(name, settings, login):
    job = JOBS[name]()
    settings = with_login(job, settings) if login else settings
    ddl, inserts = plan(job, settings)
    assert check_plan(job, settings, ddl, inserts) == (tuple(ddl), tuple(inserts))


# ------------------------------------------------------------------------------------------------ attacks


def planned(job: Job | None = None, settings: RunSettings | None = None) -> tuple[Job, RunSettings, list[str]]:
    """The job (default: acme's app), its settings and its plan's statements, DDL then inserts."""
    job = job or app_job()
    settings = settings or RunSettings()
    ddl, inserts = plan(job, settings)
    return job, settings, [*ddl, *inserts]


def refusal(job: Job, settings: RunSettings, statements: list[str], inserts: int = 2) -> str:
    """The one-line message check_plan refuses the plan with (its last `inserts` statements are the inserts)."""
    with pytest.raises(PlanRefused) as refused:
        check_plan(job, settings, statements[:-inserts], statements[-inserts:])
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"plan of {job.name} refused: ")
    return message


def splice(statements: list[str], where: str, old: str, new: str) -> list[str]:
    """The statements with `old` replaced by `new` (once) in the one that contains `where`."""
    (at,) = [i for i, s in enumerate(statements) if where in s]
    assert statements[at].count(old) == 1, (where, old)
    return [*statements[:at], statements[at].replace(old, new), *statements[at + 1:]]


def ddl_added(statements: list[str], statement: str, before: str = "CREATE TEMPORARY TABLE `app_peaks__results`"):
    at = next(i for i, s in enumerate(statements) if s.startswith(before))
    return [*statements[:at], statement, *statements[at:]]


ON_TIME = "FROM `app_peaks__source` WHERE NOT `rejected`"
SOURCE = "CREATE TEMPORARY TABLE `app_peaks__source`"


def test_an_options_hint_in_a_view_is_refused_naming_the_view_and_the_topic():
    job, settings, statements = planned()
    hostile = splice(statements, "CREATE TEMPORARY VIEW `app_peaks__on_time`", ON_TIME,
                     "FROM `app_peaks__source` /*+ OPTIONS('topic'='globex.sensors.alarms') */ WHERE NOT `rejected`")
    message = refusal(job, settings, hostile)
    assert "view `app_peaks__on_time`" in message and "globex.sensors.alarms" in message and "hint" in message


@pytest.mark.parametrize("comment", [
    "/* globex */", "/**/", "-- the rest of the line\n", "--\n", "// the rest of the line\n",
    "/*+ OPTIONS('scan.startup.mode'='earliest-offset') */"])
def test_a_comment_anywhere_outside_a_literal_is_refused(comment):
    job, settings, statements = planned()
    hostile = splice(statements, "CREATE TEMPORARY VIEW `app_peaks__on_time`", "WHERE NOT", f"{comment} WHERE NOT")
    assert "comment or hint" in refusal(job, settings, hostile)


def test_a_comment_hiding_a_table_option_is_refused():
    """`--` would hide the rest of the line from Flink: the check must not read the option as given."""
    job, settings, statements = planned()
    hostile = splice(statements, SOURCE, "'properties.group.id' = 'tenantstream.app_peaks.acme',",
                     "'properties.group.id' = 'tenantstream.app_peaks.acme', -- 'topic' = 'ignored',\n")
    message = refusal(job, settings, hostile)
    assert "table `app_peaks__source`" in message and "comment or hint" in message


def test_comment_and_statement_marks_inside_literals_and_names_are_text():
    job, settings, statements = planned()
    kept = splice(statements, "CREATE TEMPORARY VIEW `app_peaks__on_time`", "WHERE NOT `rejected`",
                  "WHERE `station_id` <> 'it''s -- not /* a */ comment; nor // a statement' AND NOT `rejected`")
    assert check_plan(job, settings, kept[:-2], kept[-2:])[0] == tuple(kept[:-2])


@pytest.mark.parametrize("topics, stranger", [
    ("acme.sensors.alarms;globex.sensors.alarms", "globex.sensors.alarms"),
    ("globex.sensors.alarms", "globex.sensors.alarms"),
    ("acme.sensors.flow", "acme.sensors.flow"),  # the tenant's own, of another stream
    ("acme.results.alarm_rate", "acme.results.alarm_rate"),
    ("acme.sensors.alarms;", ""),
    ("acme.sensors.alarms; globex.sensors.alarms", " globex.sensors.alarms"),
])
def test_a_source_of_another_tenants_or_streams_topic_is_refused(topics, stranger):
    job, settings, statements = planned()
    hostile = splice(statements, SOURCE, "'topic' = 'acme.sensors.alarms'", f"'topic' = '{topics}'")
    message = refusal(job, settings, hostile)
    assert f"table `app_peaks__source`: topic {stranger!r} is not one of its tenants' source topics" in message


@pytest.mark.parametrize("table, topic, stranger", [
    ("app_peaks__results", "acme.results.app_peaks", "globex.results.app_peaks"),
    ("app_peaks__results", "acme.results.app_peaks", "acme.sensors.alarms"),
    ("app_peaks__diverted", "acme.deadletter;acme.late", "acme.deadletter;globex.late"),
    ("app_peaks__diverted", "acme.deadletter;acme.late", "acme.alerts"),
])
def test_a_sink_to_another_tenants_topic_or_a_source_topic_is_refused(table, topic, stranger):
    job, settings, statements = planned()
    hostile = splice(statements, f"CREATE TEMPORARY TABLE `{table}`", f"'topic' = '{topic}'", f"'topic' = '{stranger}'")
    message = refusal(job, settings, hostile)
    assert f"table `{table}`: topic '{stranger.split(';')[-1]}' is not one of its tenants' sink topics" in message


def test_a_shared_jobs_tenant_cannot_be_swapped_for_another():
    job, settings, statements = planned(alarm_rate_job(TWO))
    hostile = splice(statements, "CREATE TEMPORARY TABLE `alarm_rate__source`",
                     "'acme.sensors.alarms;globex.sensors.alarms'", "'acme.sensors.alarms;initech.sensors.alarms'")
    assert "topic 'initech.sensors.alarms'" in refusal(job, settings, hostile)


@pytest.mark.parametrize("table", ["app_peaks__source", "app_peaks__results"])
def test_a_topic_pattern_is_refused(table):
    job, settings, statements = planned()
    topic = "acme.sensors.alarms" if table.endswith("source") else "acme.results.app_peaks"
    hostile = splice(statements, f"CREATE TEMPORARY TABLE `{table}`", f"'topic' = '{topic}'", "'topic-pattern' = '.*'")
    assert f"table `{table}`: names no 'topic' (a 'topic-pattern' is not allowed" in refusal(job, settings, hostile)
    both = splice(statements, f"CREATE TEMPORARY TABLE `{table}`", f"'topic' = '{topic}'",
                  f"'topic' = '{topic}', 'topic-pattern' = '.*'")
    assert "option 'topic-pattern' is not allowed" in refusal(job, settings, both)


@pytest.mark.parametrize("connector", ["filesystem", "datagen", "print", "jdbc", "blackhole", "upsert-kafka", "KAFKA"])
@pytest.mark.parametrize("table", ["app_peaks__source", "app_peaks__results"])
def test_a_connector_not_on_the_allow_list_is_refused(connector, table):
    job, settings, statements = planned()
    hostile = splice(statements, f"CREATE TEMPORARY TABLE `{table}`", "'connector' = 'kafka'",
                     f"'connector' = '{connector}'")
    assert f"table `{table}`: connector '{connector}' is not one of kafka, " in refusal(job, settings, hostile)


def test_a_datagen_table_added_to_the_plan_is_refused():
    job, settings, statements = planned()
    hostile = ddl_added(statements,
                        "CREATE TEMPORARY TABLE `app_peaks__noise` (`x` INT) WITH ('connector' = 'datagen')")
    assert "table `app_peaks__noise`: connector 'datagen'" in refusal(job, settings, hostile)


@pytest.mark.parametrize("fmt", ["csv", "avro-confluent", "debezium-json", "canal-json", "tenantstream-avro2"])
def test_an_unknown_format_is_refused(fmt):
    job, settings, statements = planned()
    hostile = splice(statements, SOURCE, "'format' = 'tenantstream-avro'", f"'format' = '{fmt}'")
    assert f"option 'format': format '{fmt}' is not one of json, raw, tenantstream-avro" in refusal(
        job, settings, hostile)


@pytest.mark.parametrize("table, option", [
    ("app_peaks__source", "'scan.topic-partition-discovery.interval' = '1 s'"),
    ("app_peaks__source", "'properties.client.dns.lookup' = 'use_all_dns_ips'"),
    ("app_peaks__source", "'sink.delivery-guarantee' = 'exactly-once'"),  # a sink's option on the source
    ("app_peaks__source", "'tenantstream-avro.reader' = 'x'"),
    ("app_peaks__results", "'properties.group.id' = 'tenantstream.app_peaks.acme'"),  # a source's on a sink
    ("app_peaks__results", "'sink.partitioner' = 'com.evil.Partitioner'"),
    ("app_peaks__results", "'json.encode.decimal-as-plain-number' = 'true'"),
])
def test_an_option_key_not_on_the_connectors_allow_list_is_refused(table, option):
    job, settings, statements = planned()
    hostile = splice(statements, f"CREATE TEMPORARY TABLE `{table}`", "'connector' = 'kafka',",
                     f"'connector' = 'kafka', {option},")
    key = option.split("'")[1]
    assert f"table `{table}`: option '{key}' is not allowed" in refusal(job, settings, hostile)


@pytest.mark.parametrize("table", ["app_peaks__source", "app_peaks__results", "app_peaks__diverted"])
@pytest.mark.parametrize("bootstrap", ["evil.example:9092", "127.0.0.1:9092,evil.example:9092", ""])
def test_a_bootstrap_other_than_the_settings_is_refused(table, bootstrap):
    job, settings, statements = planned()
    key = "'properties.bootstrap.servers'"
    hostile = splice(statements, f"CREATE TEMPORARY TABLE `{table}`", f"{key} = '127.0.0.1:9092'",
                     f"{key} = '{bootstrap}'")
    assert (f"table `{table}`: option 'properties.bootstrap.servers' {bootstrap!r} is not the run's bootstrap "
            "servers '127.0.0.1:9092'") in refusal(job, settings, hostile)


@pytest.mark.parametrize("old, new, says", [
    ("'properties.group.id' = 'tenantstream.app_peaks.acme'",
     "'properties.group.id' = 'tenantstream.alarm_rate.globex'",
     "option 'properties.group.id' is not the job's consumer group tenantstream.app_peaks.acme"),
    ("'properties.isolation.level' = 'read_committed'", "'properties.isolation.level' = 'read_uncommitted'",
     "option 'properties.isolation.level' has a value not of the allowed form 'read_uncommitted'"),
])
def test_a_source_option_value_not_the_jobs_own_is_refused(old, new, says):
    job, settings, statements = planned()
    assert says in refusal(job, settings, splice(statements, SOURCE, old, new))


@pytest.mark.parametrize("old, new, says", [
    ("'sink.transactional-id-prefix' = 'tenantstream.app_peaks.acme.results'",
     "'sink.transactional-id-prefix' = 'tenantstream.alarm_rate.acme+globex.results'",  # fences another job's
     "option 'sink.transactional-id-prefix' 'tenantstream.alarm_rate.acme+globex.results' is not the job's own"),
    ("'sink.delivery-guarantee' = 'exactly-once'", "'sink.delivery-guarantee' = 'at-least-once'",
     "option 'sink.delivery-guarantee' is not 'exactly-once'"),
])
def test_a_sink_option_value_not_the_jobs_own_is_refused(old, new, says):
    job, settings, statements = planned()
    assert says in refusal(job, settings, splice(statements, "CREATE TEMPORARY TABLE `app_peaks__results`", old, new))


@pytest.mark.parametrize("jaas, says", [
    (f'{FLINK_SCRAM_LOGIN} required username="admin" password="s3cret-admin";', "logs in as another principal"),
    ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="s3cret-admin";',
     "not of the allowed form (value not shown)"),
    (f'{FLINK_SCRAM_LOGIN} required username="admin" password="s3cret-admin" unsecure="s3cret-admin";',
     "not of the allowed form (value not shown)"),
])
def test_a_login_other_than_the_jobs_own_scram_login_is_refused_without_showing_the_password(jaas, says):
    job = app_job()
    job, settings, statements = planned(job, with_login(job, RunSettings()))
    own = jaas_line(settings.kafka_login, FLINK_SCRAM_LOGIN).replace("'", "''")
    hostile = splice(statements, SOURCE, own, jaas.replace("'", "''"))
    message = refusal(job, settings, hostile)
    assert "table `app_peaks__source`: option 'properties.sasl.jaas.config'" in message and says in message
    assert "s3cret" not in message


def test_a_refusal_next_to_a_login_does_not_show_its_password():
    """Refusals reach the tenant (an app's status), and the job's password must not."""
    job = app_job()
    job, settings, statements = planned(job, with_login(job, RunSettings()))
    own = jaas_line(settings.kafka_login, FLINK_SCRAM_LOGIN)
    for mark in ("/* */ ", "; ", "\u00a0"):
        hostile = splice(statements, SOURCE, f"'properties.sasl.jaas.config' = '{own}'",
                         f"{mark}'properties.sasl.jaas.config' = 'password=\"s3cret\";'")
        message = refusal(job, settings, hostile)
        assert "password=***" in message and "s3cret" not in message


def test_a_security_protocol_without_authentication_is_refused():
    job = app_job()
    job, settings, statements = planned(job, with_login(job, RunSettings()))
    key = "'properties.security.protocol'"
    hostile = splice(statements, "CREATE TEMPORARY TABLE `app_peaks__results`", f"{key} = 'SASL_PLAINTEXT'",
                     f"{key} = 'PLAINTEXT'")
    assert "option 'properties.security.protocol' has a value not of the allowed form 'PLAINTEXT'" in refusal(
        job, settings, hostile)


@pytest.mark.parametrize("statement, says", [
    ("CREATE CATALOG globex WITH ('type' = 'generic_in_memory')", "CREATE CATALOG GLOBEX WITH is not a statement"),
    ("CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS EXFILTRATE AS 'com.evil.Exfiltrate' LANGUAGE JAVA",
     "function EXFILTRATE AS 'com.evil.Exfiltrate' is not one of"),
    ("CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS TOPIC_TENANT AS 'com.evil.AnyTenant' LANGUAGE JAVA",
     "function TOPIC_TENANT AS 'com.evil.AnyTenant' is not one of"),
    ("CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS TOPIC_TENANT AS 'tenantstream.flink.TopicTenant' LANGUAGE JAVA "
     "USING JAR 'file:///tmp/evil.jar'", "a function is CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS"),
    ("CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS EVAL AS 'x' LANGUAGE PYTHON",
     "a function is CREATE TEMPORARY SYSTEM FUNCTION"),
    ("CREATE FUNCTION TOPIC_TENANT AS 'com.evil.AnyTenant'", "CREATE FUNCTION TOPIC_TENANT AS is not a statement"),
    ("CREATE TEMPORARY FUNCTION x AS 'com.evil.X'", "CREATE TEMPORARY FUNCTION X is not a statement"),
    ("LOAD MODULE hive WITH ('hive-version' = '3.1.3')", "LOAD MODULE HIVE WITH is not a statement"),
    ("SET 'table.dynamic-table-options.enabled' = 'true'", "SET is not a statement"),
    ("RESET 'table.dynamic-table-options.enabled'", "RESET is not a statement"),
    ("ADD JAR '/tmp/evil.jar'", "ADD JAR is not a statement"),
    ("USE CATALOG globex", "USE CATALOG GLOBEX is not a statement"),
    ("ALTER TABLE `app_peaks__source` SET ('topic' = 'globex.sensors.alarms')", "ALTER TABLE is not a statement"),
    ("DROP TEMPORARY TABLE `app_peaks__source`", "DROP TEMPORARY TABLE is not a statement"),
    ("CREATE VIEW `app_peaks__kept` AS SELECT * FROM `app_peaks__source`", "CREATE VIEW is not a statement"),
    ("CREATE TEMPORARY TABLE `app_peaks__copy` WITH ('connector' = 'kafka', 'topic' = 'acme.results.app_peaks') "
     "AS SELECT * FROM `app_peaks__source`", "a table is CREATE TABLE name (columns) WITH (options)"),
    ("CREATE TEMPORARY TABLE `app_peaks__copy` (`x` INT) WITH ('connector' = 'kafka') AS SELECT 1",
     "AS SELECT after the table's options"),
    ("CREATE TEMPORARY TABLE `app_peaks__like` (`x` INT) WITH ('connector' = 'kafka') LIKE `app_peaks__source` "
     "(INCLUDING OPTIONS)", "LIKE after the table's options"),
    ("CREATE TEMPORARY TABLE `globex`.`db`.`t` (`x` INT) WITH ('connector' = 'kafka')", "qualified name globex.db"),
    ("INSERT INTO `app_peaks__results` SELECT * FROM `app_peaks__results`", "is not a statement the planner makes"),
    ("EXECUTE STATEMENT SET BEGIN INSERT INTO x SELECT 1; END", "';'"),
    ("CALL sys.evil()", "CALL SYS is not a statement"),
    ("EXPLAIN SELECT 1", "EXPLAIN SELECT is not a statement"),
])
def test_statement_kinds_the_planner_does_not_make_are_refused(statement, says):
    job, settings, statements = planned()
    assert says in refusal(job, settings, ddl_added(statements, statement))


def test_the_same_table_created_twice_is_refused():
    job, settings, statements = planned()
    source = next(s for s in statements if s.startswith("CREATE TEMPORARY TABLE `app_peaks__source`"))
    hostile = ddl_added(statements, source)
    assert "`app_peaks__source` is created twice" in refusal(job, settings, hostile)


@pytest.mark.parametrize("where, old, new", [
    ("CREATE TEMPORARY VIEW `app_peaks__on_time`", "WHERE NOT `rejected`",
     "WHERE NOT `rejected`; CREATE TEMPORARY TABLE `t` (`x` INT) WITH ('connector' = 'datagen')"),
    ("INSERT INTO `app_peaks__results`", "INSERT INTO `app_peaks__results` SELECT",
     "SET 'table.dynamic-table-options.enabled' = 'true'; INSERT INTO `app_peaks__results` SELECT"),
    ("CREATE TEMPORARY TABLE `app_peaks__results`", "'format' = 'json'",
     "'format' = 'json'); SET 'table.dynamic-table-options.enabled' = 'true'; SELECT ('"),
])
def test_a_second_statement_after_a_semicolon_is_refused(where, old, new):
    job, settings, statements = planned()
    assert "';' at" in refusal(job, settings, splice(statements, where, old, new))


@pytest.mark.parametrize("target, says", [
    ("`globex_results`", "insert into `globex_results`: `globex_results` is no table the plan created"),
    ("`default_catalog`.`default_database`.`app_peaks__results`", "qualified name default_catalog.default_database"),
    ("`app_peaks__on_time`", "insert into `app_peaks__on_time`: `app_peaks__on_time` is no table the plan created"),
])
def test_an_insert_into_a_table_not_created_by_the_plan_or_into_a_view_is_refused(target, says):
    job, settings, statements = planned()
    hostile = splice(statements, "INSERT INTO `app_peaks__results`", "INSERT INTO `app_peaks__results`",
                     f"INSERT INTO {target}")
    assert says in refusal(job, settings, hostile)


def test_an_insert_into_a_lookup_table_is_refused():
    job, settings, statements = planned(flow(TWO, live=False))
    hostile = splice(statements, "INSERT INTO `flow__results`", "INSERT INTO `flow__results`",
                     "INSERT INTO `flow__sensors`")
    assert "table `flow__sensors`: is written, and plans write Kafka tables only" in refusal(job, settings, hostile)


@pytest.mark.parametrize("new, table", [
    ("FROM `globex__source` WHERE NOT `rejected`", "globex__source"),
    ("FROM `app_peaks__source`, `alarm_rate__source` WHERE NOT `rejected`", "alarm_rate__source"),
    ("FROM `app_peaks__source` AS s JOIN stolen AS t ON s.`tenant` = t.`tenant` WHERE NOT `rejected`", "stolen"),
    ("FROM (SELECT * FROM `app_peaks__source` UNION ALL SELECT * FROM other) WHERE NOT `rejected`", "other"),
    ("FROM `app_peaks__source` WHERE NOT `rejected` AND `station_id` IN (SELECT `id` FROM hidden)", "hidden"),
    ("FROM TABLE(TUMBLE(TABLE `foreign`, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE)) WHERE NOT `rejected`",
     "foreign"),
    ("FROM `app_peaks__on_time` WHERE NOT `rejected`", "app_peaks__on_time"),  # itself, before it exists
    ("FROM (`app_peaks__source` CROSS JOIN (`hidden`)) WHERE NOT `rejected`", "hidden"),
    ("FROM (`vault`) WHERE NOT `rejected`", "vault"),
])
def test_a_view_reading_a_table_not_in_the_plan_is_refused(new, table):
    job, settings, statements = planned()
    hostile = splice(statements, "CREATE TEMPORARY VIEW `app_peaks__on_time`", ON_TIME, new)
    assert f"view `app_peaks__on_time`: reads `{table}`, which the plan did not create" in refusal(
        job, settings, hostile)


def test_a_view_reading_another_catalogs_table_is_refused():
    job, settings, statements = planned()
    hostile = splice(statements, "CREATE TEMPORARY VIEW `app_peaks__on_time`", ON_TIME,
                     "FROM globex_catalog.tenantstream.`globex__source` WHERE NOT `rejected`")
    assert "view `app_peaks__on_time`: qualified name globex_catalog.tenantstream" in refusal(job, settings, hostile)


def test_a_sink_that_an_insert_reads_is_refused():
    """A sink's topics are the tenants' results: reading them back is no part of a plan."""
    job, settings, statements = planned()
    hostile = splice(statements, "INSERT INTO `app_peaks__diverted`", "FROM `app_peaks__source` WHERE",
                     "FROM `app_peaks__results` WHERE")
    assert ("table `app_peaks__results`: is written, and also named by insert into `app_peaks__diverted`" in
            refusal(job, settings, hostile))


def test_column_functions_with_from_are_no_table_references():
    """EXTRACT(... FROM x), TRIM(... FROM x) and IS DISTINCT FROM read columns, not tables."""
    job, settings, statements = planned()
    kept = splice(statements, "CREATE TEMPORARY VIEW `app_peaks__on_time`", "WHERE NOT `rejected`",
                  "WHERE EXTRACT(YEAR FROM `event_time`) > 2000 AND TRIM(BOTH ' ' FROM `station_id`) IS DISTINCT "
                  "FROM `datapoint_id` AND NOT `rejected`")
    assert check_plan(job, settings, kept[:-2], kept[-2:])[0] == tuple(kept[:-2])


@pytest.mark.parametrize("old, new, says", [
    ("'acme.sensors.alarms'", "E'acme.sensors.alarms'", "prefixed string literal"),
    ("'acme.sensors.alarms'", "U&'acme.sensors.alarms'", "unexpected character '&'"),
    ("'acme.sensors.alarms'", "'acme.sensors.alarms' 'x'", "its options are 'key' = 'value' pairs"),
    ("'topic' = ", "\"topic\" = ", "unexpected character '\"'"),
    ("'topic' = ", "'topic'\u00a0= ", "unexpected character '\\xa0'"),
])
def test_text_the_two_readings_could_differ_on_is_refused(old, new, says):
    job, settings, statements = planned()
    hostile = splice(statements, SOURCE, old, new)
    assert says in refusal(job, settings, hostile)


def test_an_unterminated_literal_is_refused():
    job, settings, statements = planned()
    assert "unterminated string" in refusal(job, settings, [*statements[:-1], statements[-1] + " AND 'x"])
    assert "unterminated name" in refusal(job, settings, [*statements[:-1], statements[-1] + " AND `x"])


def test_a_str_subclass_statement_or_tenant_is_refused():
    class Shifty(str):
        pass

    job, settings, statements = planned()
    assert "statement 1: is a Shifty, not text" in refusal(job, settings, [Shifty(statements[0]), *statements[1:]])
    shifty = dataclasses.replace(job, tenants=(Shifty("acme"),))
    with pytest.raises(PlanRefused, match="tenant or stream 'acme' is not letters"):
        check_plan(shifty, settings, statements[:-2], statements[-2:])


@pytest.mark.parametrize("tenants, says", [("acme;globex", "option 'tenants' 'acme;globex' names others"),
                                           ("globex", "option 'tenants' 'globex' names others")])
def test_a_metadata_lookup_of_another_tenants_documents_is_refused(tenants, says):
    job, settings, statements = planned(flow(("acme",), live=True))
    hostile = splice(statements, "CREATE TEMPORARY TABLE `flow__sensors`", "'tenants' = 'acme'",
                     f"'tenants' = '{tenants}'")
    assert f"table `flow__sensors`: {says}" in refusal(job, settings, hostile)


def test_planned_documents_of_another_tenant_are_refused():
    job, settings, statements = planned(flow(("acme",), live=False))
    table = next(s for s in statements if s.startswith("CREATE TEMPORARY TABLE `flow__sensors`"))
    documents = re.search(r"'documents' = '(.*?)'(,|\n)", table, re.DOTALL)[1]
    stolen = json.dumps([*json.loads(documents), {"tenant": "globex", "id": "flow-1", "element": "e", "kind": "power",
                                                  "unit": "kW", "thresholds": None}])
    hostile = splice(statements, "CREATE TEMPORARY TABLE `flow__sensors`", documents, stolen)
    assert "table `flow__sensors`: option 'documents' holds documents of 'globex'" in refusal(job, settings, hostile)


@pytest.mark.parametrize("old, new, says", [
    ("'collection' = 'sensors'", "'collection' = 'credentials'", "option 'collection' has a value not of the allowed"),
    ("'uri' = 'mongodb://127.0.0.1:27017'", "'uri' = 'file:///etc/passwd'", "option 'uri' has a value not of the"),
    ("'uri' = 'mongodb://127.0.0.1:27017'", "'uri' = 'mongodb+srv://admin:s3cret@evil.example'",
     "option 'uri' has a value not of the allowed form (value not shown)"),
    ("'connector' = 'tenantstream-mongodb',", "'connector' = 'tenantstream-mongodb', 'lookup.cache' = 'FULL',",
     "option 'lookup.cache' is not allowed"),
])
def test_a_metadata_lookup_option_not_on_the_allow_list_is_refused(old, new, says):
    job, settings, statements = planned(flow(("acme",), live=True))
    assert says in refusal(job, settings, splice(statements, "CREATE TEMPORARY TABLE `flow__sensors`", old, new))


def test_the_tokens_read_literals_with_doubled_quotes_and_backtick_names():
    found = tokens("SELECT `a``b`, 'it''s' FROM `t` WHERE x <> 1.5e3")
    assert [(t.kind, t.text) for t in found] == [
        ("word", "SELECT"), ("name", "a`b"), ("symbol", ","), ("string", "it's"), ("word", "FROM"), ("name", "t"),
        ("word", "WHERE"), ("word", "x"), ("symbol", "<>"), ("number", "1.5e3")]


# ------------------------------------------------------------------------------------------------ in Flink


@dataclass(frozen=True)
class ReadsGlobex(BeforeWindow):
    """A stage before the window (pipeline.stages.BeforeWindow) whose view reads globex's alarms by an OPTIONS hint:
    the attack of issue 21 (finding 3), as an object a job carries."""

    def views(self, job: Job, on_time: str) -> list[str]:
        return [f"CREATE TEMPORARY VIEW `{self.window_input(job)}` AS SELECT * FROM `{job.table('source')}` "
                "/*+ OPTIONS('topic'='globex.sensors.alarms') */ WHERE NOT `rejected`"]

    def window_input(self, job: Job) -> str:
        return job.table("stolen")

    def rejected(self, job: Job) -> list:
        return []


def test_flink_never_sees_a_hinted_plan_and_would_refuse_the_hint_itself(tmp_path):
    from pyflink.util.exceptions import JavaException

    from connectors.flink import CheckpointSettings, streaming_table_env
    from pipeline.execute import declare, execute

    env = streaming_table_env(CheckpointSettings(tmp_path / "checkpoints"))
    job = app_job().before_window(ReadsGlobex())
    settings = with_login(job, RunSettings("127.0.0.1:1"))  # no broker is reached: the plan never runs
    with pytest.raises(PlanRefused, match=r"view `app_peaks__stolen`: comment or hint .*globex\.sensors\.alarms"):
        execute(job, settings, env)
    assert list(env.list_temporary_tables()) == [] and list(env.list_temporary_views()) == []
    assert "topic_tenant" not in [f.lower() for f in env.list_user_defined_functions()]

    # Had the check been bypassed: with what execute set, Flink refuses the hint; with Flink's default it reads it.
    ddl, _ = plan(job, settings)
    hinted = next(s for s in ddl if "OPTIONS(" in s)
    for statement in ddl[:ddl.index(hinted)]:
        declare(env, statement)
    with pytest.raises(JavaException, match=re.escape("'OPTIONS' hint is allowed only when the config option "
                                                      "'table.dynamic-table-options.enabled' is set to true")):
        declare(env, hinted)
    env.get_config().set("table.dynamic-table-options.enabled", "true")
    declare(env, hinted)
    assert "app_peaks__stolen" in list(env.list_temporary_views())


def test_the_cli_ends_a_refused_plan_in_one_line_with_exit_code_2(monkeypatch, capsys):
    """`submit` as it runs, but the job's plan names globex's topic (and no cluster is reached)."""
    from submit import cluster_commands
    from submit.cli import main

    def submit_hostile_plan(job: Job, settings: RunSettings, *_args: object) -> str:
        ddl, inserts = plan(job, settings)
        check_plan(job, settings, [s.replace("'acme.sensors.alarms'", "'globex.sensors.alarms'") for s in ddl], inserts)
        return "never"

    monkeypatch.setattr(cluster_commands, "submit_job", submit_hostile_plan)
    assert main(["submit", "alarm_rate", "--tenants", "acme"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "table `alarm_rate__source`: topic 'globex.sensors.alarms' is not one of its tenants' source topics" in err
