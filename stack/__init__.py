"""The local stack: real Kafka, Cassandra, FerretDB and a Flink cluster on loopback."""
