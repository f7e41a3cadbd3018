"""The analysts' side: `tenantstream serve`, its REST API and WebSocket push over the results (PROTOCOL.md)."""
