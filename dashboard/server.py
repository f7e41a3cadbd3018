"""`tenantstream serve`: the dashboard on uvicorn, against the configured stack."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from connectors.results import DEFAULT_KEYSPACE
from stack.config import StackConfig, load_config
from submit.arguments import KEYSPACE_NAME, Count, Name

if TYPE_CHECKING:  # the server's modules (Starlette, prometheus-client) load only when it serves
    from dashboard.app import Settings


def settings_of(cfg: StackConfig, keyspace: str = DEFAULT_KEYSPACE, database: str = "tenantstream",
                mongo_uri: str | None = None, tenant_pattern: str = "", https: bool = False) -> Settings:
    from dashboard.app import Settings

    return Settings(cfg.kafka.bootstrap, cfg.cassandra.port, keyspace, mongo_uri or cfg.ferretdb.uri, database,
                    cfg.flink.rest_url, tenant_pattern, https)


def run(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted (uvicorn refuses client frames over MAX_FRAME bytes with close code 1009).

    WebSocket frames go out uncompressed: permessage-deflate compresses each page's copy of a frame on its
    own (150 us for a checkpoint's 20 KB batch, 75 ms of the event loop for 500 pages), and the pages read
    from a server near them."""
    import uvicorn

    from dashboard.app import create_app
    from dashboard.stream import MAX_FRAME
    from stack.frontend import dashboard_assets

    dashboard_assets(load_config().cache_dir)  # the page, bundled with npm when its sources changed
    print(f"dashboard at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, ws_max_size=MAX_FRAME, ws_per_message_deflate=False,
                log_level="warning", lifespan="on")


def _pattern(text: str) -> str:
    try:
        re.compile(text)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a regular expression: {err}") from None
    return text


def _serve(args: argparse.Namespace) -> int:
    cfg = load_config()
    run(settings_of(cfg, args.keyspace, args.database, args.mongo_uri, args.tenants_matching, args.https),
        args.host, args.port)
    return 0


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="the analysts' dashboard: live results over WebSocket, a REST API, /metrics",
        description="Serve the dashboard: log in with a token from `tenantstream tenant token create T`, "
                    "see your tenant's windows live and query their history (dashboard/PROTOCOL.md).")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=Count("a port", 1, 65535), default=8090, help="the port (default 8090)")
    serve.add_argument("--keyspace", type=KEYSPACE_NAME, default=DEFAULT_KEYSPACE,
                       help=f"the keyspace the results writers use (default {DEFAULT_KEYSPACE})")
    serve.add_argument("--mongo-uri", help="the metadata store (default: the local stack's FerretDB)")
    serve.add_argument("--database", type=Name("database"), default="tenantstream",
                       help="the metadata database with the tenant registry and tokens (default tenantstream)")
    serve.add_argument("--tenants-matching", type=_pattern, default="", metavar="REGEX",
                       help="read only the topics of tenants whose name matches (default: every tenant)")
    serve.add_argument("--https", action="store_true",
                       help="browsers reach it over https through a TLS proxy: Secure cookie, https origin")
    serve.set_defaults(func=_serve)
