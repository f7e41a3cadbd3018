"""`tenantstream`: one command for the local stack, the demo and the jobs."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

from stack import control
from stack.config import load_config
from stack.install import InstallError
from stack.servers import SERVERS


def _stack_up(args: argparse.Namespace) -> int:
    control.up(load_config())
    return 0


def _stack_down(args: argparse.Namespace) -> int:
    stopped = control.down(load_config(), purge=args.purge)
    if not stopped:
        print("no server of the stack was running", file=sys.stderr)
    return 0


def _stack_status(args: argparse.Namespace) -> int:
    rows = control.status(load_config())
    print(control.format_status(rows))
    return 0 if all(r.state == "up" for r in rows) else 3


def _stack_logs(args: argparse.Namespace) -> int:
    path = control.log_file(load_config(), args.server)
    if not path.exists():
        print(f"{args.server} has no log yet ({path}); start it with `tenantstream stack up`",
              file=sys.stderr)
        return 1
    tail = ["tail", "-n", str(args.lines)] + (["-F"] if args.follow else []) + [str(path)]
    return subprocess.call(tail)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tenantstream",
        description="Flink jobs for multi-tenant IoT sensor streams: run them on a local stack "
                    "(Kafka, Cassandra, FerretDB for MongoDB, Flink) and check their results.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens in detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = commands.add_parser(
        "stack", help="install, start, stop and inspect the local servers",
        description="The local stack: Apache Kafka (KRaft), Apache Cassandra, FerretDB (MongoDB wire "
                    "protocol) and a standalone Flink cluster, all on 127.0.0.1. Ports, heaps and "
                    "folders come from stack/stack.toml or the file named by $TENANTSTREAM_STACK_CONFIG.")
    actions = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("up", help="install on first use, start every server, wait until each answers"
                       ).set_defaults(func=_stack_up)
    down = actions.add_parser("down", help="stop exactly the servers that `up` started")
    down.add_argument("--purge", action="store_true", help="also delete their data and logs")
    down.set_defaults(func=_stack_down)
    actions.add_parser("status", help="table of server, address, pid, state and memory "
                       "(exit 3 if any server is not up)").set_defaults(func=_stack_status)
    logs = actions.add_parser("logs", help="show a server's log")
    logs.add_argument("server", choices=[s.name for s in SERVERS])
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many last lines (default 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing as the log grows")
    logs.set_defaults(func=_stack_logs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (control.StackError, InstallError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
