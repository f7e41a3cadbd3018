"""The job model and its contracts, the base every other package builds on.

- `job.py`: Job (a job declared in Python, immutable, its contracts checked at each builder call), Topics,
  RunSettings, ResultTable (where a job's results are kept, declared)
- `stages.py`: what a job's parts must be: Aggregate, Window, BeforeWindow, AfterWindow, ResultStage
- `validation.py`: the rules that send bad records to the dead-letter topic
- `sql.py`: quoting, literals, table DDL and the Kafka tables' options
- `plan.py`: a job's Flink SQL statements, from the job alone
- `check.py`: the check every plan passes before it runs
- `execute.py`: the one module that talks to Flink
- `errors.py`: TenantstreamError, the root of the project's errors, and each package's subclass

Dependencies run one way: pipeline <- operators <- jobs <- connectors, submit, dashboard, bench. Nothing here
imports those, and planning imports no client of a server (no Kafka, Cassandra, MongoDB or Flink module).
"""
