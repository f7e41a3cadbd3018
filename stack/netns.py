"""The multi-node profile's network, made with iproute2 as root: one bridge, and a network namespace per node.

The bridge holds the host's address of the profile (`[network]` in stack/cluster.toml). Each node that has an
address of its own runs in a namespace named after it (`ts-<node>`), with loopback up and one end of a veth
pair (`eth0`, the node's address) whose other end (`ts-<digest>`, on the host) is a port of the bridge. Nothing
is routed or NATed off the bridge: a node reaches the other nodes and the host's address, nothing else.

Taking the host's end of a node's veth down cuts the node off from everything; setting it up joins it again.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from pipeline.errors import StackSetupError
from stack.config import StackConfig

IFF_UP = 0x1


class NetworkError(StackSetupError):
    """An `ip` command failed, or the caller is not root; the message says which and how to fix it."""


def namespace(node: str) -> str:
    """The network namespace of `node`."""
    return f"ts-{node}"


def host_link(node: str) -> str:
    """The host's end of `node`'s veth pair (an interface name has at most 15 characters)."""
    return f"ts-{hashlib.sha256(node.encode()).hexdigest()[:10]}"


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise NetworkError(f"{what} makes network namespaces, a bridge and veth pairs with `ip`: run it as root")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise NetworkError("`ip` (iproute2) is not on PATH; install the Debian package iproute2") from None
    if check and done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done


def _exists(link: str) -> bool:
    return Path(f"/sys/class/net/{link}").exists()


def namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()}


def ensure_bridge(cfg: StackConfig) -> None:
    """The bridge with the host's address, up (made if absent)."""
    net = cfg.network
    if not _exists(net.bridge):
        _ip("link", "add", net.bridge, "type", "bridge")
    if f"{net.address}/{net.prefix}" not in _ip("-o", "addr", "show", "dev", net.bridge).stdout:
        _ip("addr", "add", f"{net.address}/{net.prefix}", "dev", net.bridge)
    _ip("link", "set", net.bridge, "up")


def ensure_node(cfg: StackConfig, node: str, address: str) -> str:
    """`node`'s namespace with loopback up and `address` on its veth to the bridge (made if absent); its name."""
    net, ns, link = cfg.network, namespace(node), host_link(node)
    if ns not in namespaces():
        _ip("netns", "add", ns)
    if not _exists(link):
        _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _ip("link", "set", link, "master", net.bridge)
    _ip("link", "set", link, "up")
    if f"{address}/{net.prefix}" not in _ip("-n", ns, "-o", "addr", "show", "dev", "eth0").stdout:
        _ip("-n", ns, "addr", "add", f"{address}/{net.prefix}", "dev", "eth0")
    _ip("-n", ns, "link", "set", "eth0", "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    return ns


def remove(cfg: StackConfig, nodes: list[str]) -> list[str]:
    """Delete the namespaces of `nodes` (their veth pairs go with them) and the bridge; what was removed."""
    removed = []
    present = namespaces()
    for node in nodes:
        if namespace(node) in present:
            _ip("netns", "del", namespace(node))
            removed.append(namespace(node))
        link = host_link(node)
        if _exists(link):  # a veth whose namespace was deleted by hand, or one the kernel is still removing
            done = _ip("link", "del", link, check=False)
            if done.returncode != 0 and _exists(link):
                raise NetworkError(f"ip link del {link}: {done.stderr.strip() or f'exit {done.returncode}'}")
    if _exists(cfg.network.bridge):
        _ip("link", "del", cfg.network.bridge)
        removed.append(cfg.network.bridge)
    return removed


def set_link(node: str, up: bool) -> None:
    """Join `node` to the bridge again (up) or cut it off from every other node and the host (down)."""
    _ip("link", "set", host_link(node), "up" if up else "down")


def link_up(node: str) -> bool | None:
    """Whether `node`'s host link is up; None if it has none."""
    try:
        flags = int(Path(f"/sys/class/net/{host_link(node)}/flags").read_text(), 16)
    except OSError:
        return None
    return bool(flags & IFF_UP)


def in_namespace(node: str, argv: list[str]) -> list[str]:
    """`argv` run inside `node`'s namespace (`ip netns exec` execs it: the pid is the program's)."""
    return ["ip", "netns", "exec", namespace(node), *argv]
