"""Which addresses a subscription may make us post to: the public internet only.

Python's ``ipaddress.is_global`` is not enough on its own. It does not look
inside the IPv6 forms that carry an IPv4 address (a network with NAT64 routes
``64:ff9b::a9fe:a9fe`` to 169.254.169.254, the cloud metadata service), and it
treats a few IANA special-purpose blocks (192.0.0.0/24's globally reachable
entries, say) as global. So:

- an IPv6 address that embeds an IPv4 one (IPv4-mapped, IPv4-translated,
  IPv4-compatible, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4
  ``2002::/16``, Teredo ``2001::/32``) is judged by the IPv4 address(es) it
  carries;
- every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries is
  refused, whatever the registry says of its reachability, as are multicast
  and anything ``is_global`` refuses.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

# iana-ipv4-special-registry (every entry), and multicast.
SPECIAL_IPV4 = tuple(
    IPv4Network(block)
    for block in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24",
        "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
        "240.0.0.0/4", "255.255.255.255/32",
    )
)  # fmt: skip

# iana-ipv6-special-registry (every entry but the forms judged by their IPv4
# address below), and multicast.
SPECIAL_IPV6 = tuple(
    IPv6Network(block)
    for block in (
        "::/128", "::1/128", "100::/64", "100:0:0:1::/64", "2001::/23", "2001:db8::/32",
        "2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "ff00::/8",
    )
)  # fmt: skip

NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")
NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
IPV4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")
IPV4_COMPATIBLE = IPv6Network("::/96")
SIX_TO_FOUR = IPv6Network("2002::/16")
TEREDO = IPv6Network("2001::/32")


def embedded_ipv4(address: IPv6Address) -> tuple[IPv4Address, ...]:
    """The IPv4 address(es) an IPv6 address carries, or () when it carries none.

    Teredo carries two (its server and its client), and both are judged.
    """
    packed = address.packed
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address in NAT64_WELL_KNOWN or address in IPV4_TRANSLATED:
        return (IPv4Address(packed[12:]),)
    if address in NAT64_LOCAL:
        # RFC 6052 with a /48 prefix: bits 64-71 are the reserved "u" octet.
        return (IPv4Address(packed[6:8] + packed[9:11]),)
    if address in SIX_TO_FOUR:
        return (IPv4Address(packed[2:6]),)
    if address in TEREDO:
        server, client = address.teredo or (IPv4Address(0), IPv4Address(0))
        return (server, client)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1
        return (IPv4Address(packed[12:]),)
    return ()


def _public_ipv4(address: IPv4Address) -> bool:
    return address.is_global and not any(address in block for block in SPECIAL_IPV4)


def is_public(text: str) -> bool:
    """May we post to this address without SUBSCRIPTION_ALLOW_PRIVATE?

    ``text`` is an address as a resolver gives it (an IPv6 zone id is ignored).
    Raises ValueError for text that is not an IP address.
    """
    address = ip_address(text.partition("%")[0])
    if isinstance(address, IPv4Address):
        return _public_ipv4(address)
    carried = embedded_ipv4(address)
    if carried:
        return all(_public_ipv4(inner) for inner in carried)
    return address.is_global and not any(address in block for block in SPECIAL_IPV6)
