"""I/O at the edges: Kafka, Cassandra, MongoDB metadata, and the jars Flink needs."""
