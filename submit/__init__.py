"""The `tenantstream` command line: local stack, demo, and (later) cluster submission."""
