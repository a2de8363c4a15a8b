"""Pod networking for the bench: one network namespace per pod on a private bridge.

Each pod gets its own namespace (so etcd can listen on 0.0.0.0 as it does in Kubernetes) and a
fresh address every time it is recreated, as a Kubernetes pod does. The pod DNS names of the
headless service resolve through a hosts file that `ip netns exec` bind-mounts over /etc/hosts.
Nothing leaves the machine: the bridge has no uplink.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


@dataclass
class PodNet:
    netns: str
    host_veth: str
    address: str
    hostnames: tuple[str, ...]


_RNG = random.SystemRandom()


def _free_octet() -> int:
    """A 10.231.<octet>.0/24 no interface on this machine uses yet."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    free = [o for o in range(16, 250) if f" 10.231.{o}." not in used]
    if not free:
        raise RuntimeError("no free 10.231.x.0/24 subnet for the bench")
    return _RNG.choice(free)


@dataclass
class Network:
    """A bridge plus one namespace per live pod."""

    # From the OS, not `random`: two bench processes seeded alike (tests seed `random`) must not
    # pick the same subnet, or their clients would reach each other's pods.
    tag: str = field(default_factory=lambda: f"{_RNG.randrange(16**4):04x}")
    subnet_octet: int = field(default_factory=lambda: _free_octet())
    pods: dict[str, PodNet] = field(default_factory=dict)
    _next_host: int = 10

    @property
    def bridge(self) -> str:
        return f"ek8s{self.tag}"

    @property
    def gateway(self) -> str:
        return f"10.231.{self.subnet_octet}.1"

    def setup(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def teardown(self) -> None:
        for pod in list(self.pods):
            self.remove_pod(pod)
        sh("ip", "link", "del", self.bridge, check=False)

    def add_pod(self, pod: str, hostnames: tuple[str, ...]) -> PodNet:
        """A new namespace with a new address (a recreated pod never keeps its IP)."""
        if self._next_host > 250:
            raise RuntimeError("bench network out of addresses")
        address = str(ipaddress.ip_address(self.gateway) + self._next_host - 1)
        self._next_host += 1
        index = self._next_host
        net = PodNet(f"ek8s{self.tag}-{index}", f"ek8s{self.tag}v{index}", address, hostnames)
        sh("ip", "netns", "add", net.netns)
        sh(
            "ip",
            "link",
            "add",
            net.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            net.netns,
        )
        sh("ip", "link", "set", net.host_veth, "master", self.bridge, "up")
        sh("ip", "-n", net.netns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", net.netns, "link", "set", "eth0", "up")
        sh("ip", "-n", net.netns, "link", "set", "lo", "up")
        self.pods[pod] = net
        self.write_hosts()
        return net

    def remove_pod(self, pod: str) -> None:
        net = self.pods.pop(pod, None)
        if net is None:
            return
        # Nothing outlives its pod: kill what still runs in the namespace (an exec cut short).
        for pid in sh("ip", "netns", "pids", net.netns, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "link", "del", net.host_veth, check=False)
        sh("ip", "netns", "del", net.netns, check=False)
        shutil.rmtree(f"/etc/netns/{net.netns}", ignore_errors=True)
        self.write_hosts()

    def cut(self, pod: str) -> None:
        """Cut a pod off from every other (its link to the bridge goes down)."""
        sh("ip", "link", "set", self.pods[pod].host_veth, "down")

    def heal(self, pod: str) -> None:
        sh("ip", "link", "set", self.pods[pod].host_veth, "up")

    def resolve(self, name: str) -> str | None:
        """A live pod's address by its DNS name (the cluster's DNS), else None."""
        return next((n.address for n in list(self.pods.values()) if name in n.hostnames), None)

    def hosts_text(self) -> str:
        lines = ["127.0.0.1 localhost"]
        lines += [f"{net.address} {' '.join(net.hostnames)}" for net in self.pods.values()]
        return "\n".join(lines) + "\n"

    def write_hosts(self) -> None:
        """Rewrite every pod's hosts file in place: running processes see the bind mount's inode."""
        text = self.hosts_text()
        for net in self.pods.values():
            path = Path(f"/etc/netns/{net.netns}/hosts")
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w") as handle:
                handle.write(text)


def can_run() -> str | None:
    """Why the bench cannot run here, or None."""
    if os.geteuid() != 0:
        return "the bench needs root (network and mount namespaces)"
    if shutil.which("ip") is None:
        return "the bench needs iproute2's ip"
    return None
