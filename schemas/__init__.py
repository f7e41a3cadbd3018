"""Avro record shapes (.avsc, one file per version) and their codec."""
