"""Who the client is behind a reverse proxy or load balancer.

``Forwarded`` (RFC 7239), ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when the
connection comes from one of ``trusted_proxies``; from anyone else they are ignored, since any
client can send them. The address list is walked from the nearest hop back, skipping trusted
proxies: the first address that is not one is the client (an attacker can prepend anything, but
not what the trusted proxies appended). The connection's scope is rewritten once, in the request
middleware, so per-address bounds, access and audit logs, and the scheme of signed URLs all see
the real client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import MutableMapping, Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> list[Network]:
    """Addresses or networks (``10.0.0.0/8``); ValueError names the first that is neither."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return networks


class ProxyHeaders:
    def __init__(self, trusted: Sequence[str]) -> None:
        self.networks = parse_networks(trusted)

    def trusts(self, address: str) -> bool:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        return any(parsed in network for network in self.networks)

    def resolve(self, scope: MutableMapping[str, Any]) -> None:
        """Replace the scope's client (and scheme) by what trusted proxies say they forwarded."""
        client = scope.get("client")
        if not client or not self.trusts(client[0]):
            return
        headers: dict[bytes, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.lower(), []).append(value.decode("latin-1"))
        chain, proto = _forwarded(headers.get(b"forwarded"))
        if not chain:
            chain = _values(headers.get(b"x-forwarded-for"))
            protos = _values(headers.get(b"x-forwarded-proto"))
            proto = protos[-1].lower() if protos else None
        address = self._client_of(chain)
        if address is not None:
            scope["client"] = (address, client[1])
        if proto in ("http", "https"):
            scope["scheme"] = proto

    def _client_of(self, chain: list[str]) -> str | None:
        """The nearest address that is not a trusted proxy; None when one of them is not an
        address (``unknown``, an obfuscated name): then the proxy stays the client."""
        for hop in reversed(chain):
            address = _address(hop)
            if address is None:
                return None
            if not self.trusts(address):
                return address
        return _address(chain[0]) if chain else None


def _values(headers: list[str] | None) -> list[str]:
    """The comma-separated values of a header sent one or more times, in order."""
    return [part.strip() for header in headers or [] for part in header.split(",") if part.strip()]


def _address(value: str) -> str | None:
    """An address from ``for=`` or X-Forwarded-For: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _forwarded(values: list[str] | None) -> tuple[list[str], str | None]:
    """The ``for=`` addresses of RFC 7239 elements, nearest last, and the nearest ``proto=``."""
    chain: list[str] = []
    proto = None
    for value in values or []:
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, token = pair.strip().partition("=")
                if name.lower() == "for" and token:
                    chain.append(token)
                elif name.lower() == "proto" and token:
                    proto = token.strip('"').lower()
    return chain, proto
