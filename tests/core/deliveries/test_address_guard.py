"""The subscription URL guard: only the public internet, on web ports.

Each address below is one an attacker with an API key could name to make the
engine reach its own network or a cloud metadata service; a network with NAT64,
6to4 or Teredo relays passes the embedded IPv4 address on.
"""

from __future__ import annotations

import pytest

from core.deliveries.addresses import embedded_ipv4, is_public
from core.deliveries.webhooks import UnsafeURL, check_url

REFUSED = [
    # IPv4 special-purpose blocks, the ones is_global alone lets through included.
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "192.0.0.192", "192.0.0.9", "192.0.0.10", "192.0.2.1", "198.18.0.1",
    "198.51.100.7", "203.0.113.9", "192.88.99.1", "192.31.196.1", "192.52.193.1",
    "192.175.48.1", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    # IPv6 special-purpose blocks.
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "100::1", "2001:2::1", "2001:10::1", "3fff::1", "5f00::1",
    # IPv6 forms carrying a private or special IPv4 address.
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:0:7f00:1",  # IPv4-translated (SIIT), 127.0.0.1
    "::127.0.0.1",  # IPv4-compatible
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::10.0.0.1",
    "64:ff9b:1:a9fe:a9:fe00::",  # local-use NAT64 (/48) of 169.254.169.254
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "fe80::1%eth0",
]  # fmt: skip

ALLOWED = [
    "93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
    "::ffff:93.184.215.14",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:5db8:d70e::1",  # 6to4 of 93.184.215.14
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_special_purpose_and_embedded_private_addresses_are_refused(address: str) -> None:
    """Every IANA special-purpose block is refused, and an IPv6 address carrying an
    IPv4 one is judged by it."""
    assert not is_public(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    """Public IPv4 and IPv6 addresses, and IPv6 forms carrying a public IPv4, pass."""
    assert is_public(address)


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:10.0.0.1", ["10.0.0.1"]),
        ("::ffff:0:a00:1", ["10.0.0.1"]),
        ("::10.0.0.1", ["10.0.0.1"]),
        ("64:ff9b::a9fe:a9fe", ["169.254.169.254"]),
        ("64:ff9b:1:a9fe:a9:fe00::", ["169.254.169.254"]),
        ("2002:a9fe:a9fe::1", ["169.254.169.254"]),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", ["65.54.227.120", "127.0.0.1"]),
        ("2606:4700:4700::1111", []),
        ("::1", []),
    ],
)
def test_the_ipv4_address_each_ipv6_form_carries(address: str, carried: list[str]) -> None:
    """The embedded IPv4 address is read where each form puts it (RFC 4291, 6052,
    3056, 4380)."""
    from ipaddress import IPv6Address

    assert [str(a) for a in embedded_ipv4(IPv6Address(address))] == carried


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::127.0.0.1"])
def test_a_url_naming_an_embedded_private_address_is_refused(address: str) -> None:
    """The guard refuses a URL whose host is such an address, before any connection."""
    with pytest.raises(UnsafeURL, match="private address"):
        check_url(f"https://[{address}]/hook", allow_private=False)


def test_only_web_ports_unless_more_are_allowed() -> None:
    """A public host on a port other than 80 and 443 is refused, naming the setting;
    SUBSCRIPTION_ALLOW_PORTS admits more; SUBSCRIPTION_ALLOW_PRIVATE admits any."""
    public = lambda _host, _port: ["93.184.215.14"]  # noqa: E731
    check_url("https://hooks.example.com/x", allow_private=False, resolve=public)
    check_url("http://hooks.example.com:80/x", allow_private=False, resolve=public)
    with pytest.raises(UnsafeURL, match="SUBSCRIPTION_ALLOW_PORTS"):
        check_url("http://hooks.example.com:6379/x", allow_private=False, resolve=public)
    check_url(
        "https://hooks.example.com:8443/x",
        allow_private=False,
        allow_ports=frozenset({8443}),
        resolve=public,
    )
    check_url("http://localhost:6379/x", allow_private=True)
