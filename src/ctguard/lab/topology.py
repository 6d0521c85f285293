"""The lab's network: clients and a server on either side of a gateway.

::

    attacker 10.1.0.2 ─┐
    innocent 10.2.0.2 ─┼─ gateway (.1 on each link, forwards, tracks) ─ 10.3.0.2 server
    late     10.4.0.2 ─┘

Only the gateway tracks connections (a ``ct state`` rule registers its
hooks); the clients and the server stay untracked, so every count the lab
reports is the gateway's table alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctguard.lab.namespaces import Lab, LabNamespace

SERVER_SUBNET = 3
CLIENT_SUBNETS = {"attacker": 1, "innocent": 2, "late": 4}


@dataclass
class Client:
    namespace: LabNamespace
    address: str
    gateway_side: str  # the gateway's address on this link
    device: str  # the client's own end of the link


@dataclass
class GatewayTopology:
    lab: Lab
    gateway: LabNamespace
    server: LabNamespace
    server_address: str
    clients: dict[str, Client] = field(default_factory=dict)

    def client(self, name: str) -> Client:
        return self.clients[name]

    def masquerade_towards_server(self) -> None:
        """Source NAT towards the server, as a home or cloud NAT gateway does."""
        self.gateway.nft(
            "table ip ctg_lab_nat {\n"
            "  chain post { type nat hook postrouting priority srcnat; "
            f"ip daddr {self.server_address} masquerade; }}\n"
            "}\n"
        )

    def cut(self, name: str) -> None:
        """Remove a client's link: its peers vanish without FIN or RST."""
        client = self.clients[name]
        client.namespace.exec(["ip", "link", "del", client.device])


def build_gateway(lab: Lab, clients: tuple[str, ...] = ("attacker", "innocent")) -> GatewayTopology:
    gateway = lab.add_namespace("gw")
    server = lab.add_namespace("srv")
    _, server_address = lab.link(gateway, server, SERVER_SUBNET)
    gateway.write_sysctl("net.ipv4.ip_forward", "1")
    gateway.enable_conntrack()
    topology = GatewayTopology(lab, gateway, server, server_address)
    for name in clients:
        subnet = CLIENT_SUBNETS[name]
        namespace = lab.add_namespace(name[:5])
        gateway_side, address = lab.link(gateway, namespace, subnet)
        device = _device_with(namespace, address)
        namespace.exec(["ip", "route", "add", "default", "via", gateway_side])
        topology.clients[name] = Client(namespace, address, gateway_side, device)
        server.exec(["ip", "route", "add", f"10.{subnet}.0.0/24", "via", f"10.{SERVER_SUBNET}.0.1"])
    return topology


def _device_with(namespace: LabNamespace, address: str) -> str:
    out = namespace.exec(["ip", "-o", "-4", "addr", "show"])
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[3].split("/")[0] == address:
            return parts[1].split("@")[0]
    raise LookupError(f"no device with {address} in {namespace.name}")
