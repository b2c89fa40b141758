"""Believing forwarded-client headers only from trusted proxies (server/proxies.py)."""

from __future__ import annotations

from typing import Any

import pytest

from assetfiles.server.proxies import ProxyHeaders, parse_networks


def scope(peer: str, *headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "client": (peer, 40000),
        "scheme": "http",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }


PROXIES = ProxyHeaders(["10.0.0.0/8", "192.0.2.1"])


@pytest.mark.parametrize(
    ("peer", "headers", "client", "scheme"),
    [
        # a trusted proxy: the nearest untrusted address it forwarded, and its scheme
        (
            "10.1.1.1",
            [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")],
            "203.0.113.9",
            "https",
        ),
        # an attacker's prepended address is skipped: the proxies appended the real one last
        ("10.1.1.1", [("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.2.2.2")], "203.0.113.9", "http"),
        # the header sent twice counts as one list
        (
            "10.1.1.1",
            [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")],
            "203.0.113.9",
            "http",
        ),
        # RFC 7239, with a quoted IPv6 address and port
        ("192.0.2.1", [("Forwarded", 'for="[2001:db8::17]:4711";proto=https')], "2001:db8::17", "https"),
        ("192.0.2.1", [("Forwarded", "for=198.51.100.7:1234, for=10.9.9.9")], "198.51.100.7", "http"),
        # an untrusted peer's headers are ignored
        (
            "198.51.100.1",
            [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")],
            "198.51.100.1",
            "http",
        ),
        # only trusted proxies in the chain: the farthest is the client
        ("10.1.1.1", [("X-Forwarded-For", "10.3.3.3")], "10.3.3.3", "http"),
        # an unknown or obfuscated hop: the proxy stays the client
        ("10.1.1.1", [("Forwarded", "for=unknown")], "10.1.1.1", "http"),
        ("10.1.1.1", [("X-Forwarded-For", "203.0.113.9, _hidden")], "10.1.1.1", "http"),
        # a scheme other than http or https is ignored
        ("10.1.1.1", [("X-Forwarded-Proto", "gopher")], "10.1.1.1", "http"),
    ],
)
def test_the_client_is_the_nearest_address_no_trusted_proxy_owns(
    peer: str, headers: list[tuple[str, str]], client: str, scheme: str
) -> None:
    resolved = scope(peer, *headers)
    PROXIES.resolve(resolved)
    assert resolved["client"] == (client, 40000)
    assert resolved["scheme"] == scheme


def test_ipv4_mapped_peers_are_trusted_as_their_ipv4_address() -> None:
    resolved = scope("::ffff:10.1.1.1", ("X-Forwarded-For", "203.0.113.9"))
    PROXIES.resolve(resolved)
    assert resolved["client"][0] == "203.0.113.9"


def test_a_setting_that_is_not_an_address_or_network_is_named() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.internal' is not an IP address or network"):
        parse_networks(["10.0.0.0/8", "proxy.internal"])
