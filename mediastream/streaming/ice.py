"""ICE configuration: which servers to ask, and which local addresses to offer.

Two things aiortc does not let us choose per connection:

* It falls back to Google's public STUN server when no ICE servers are configured. We always pass
  an explicit list (empty by default), so gathering never waits for a server it cannot reach.
* aioice gathers host candidates on every interface *except loopback* and has no option to pick
  addresses. `restrict_host_addresses` replaces its lookup function — the one process-wide patch
  in this code base — so a server (or a test peer) can gather on exactly the addresses it is
  given, 127.0.0.1 included. Without a restriction, aioice's own lookup is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

__all__ = ["restrict_host_addresses", "rtc_configuration"]

_aioice_lookup = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Gather ICE host candidates on `addresses` only (all interfaces again when empty).

    Process-wide: it affects every peer connection created afterwards in this process.
    """
    if not addresses:
        aioice.ice.get_host_addresses = _aioice_lookup
        return
    chosen = list(dict.fromkeys(addresses))

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def rtc_configuration(ice_servers: Sequence[str] = ()) -> RTCConfiguration:
    """A configuration with exactly `ice_servers` (STUN/TURN URLs; none by default).

    TURN credentials may be given inline as ``turn:user:password@host:port``.
    """
    servers = []
    for url in ice_servers:
        scheme, _, rest = url.partition(":")
        if scheme in {"turn", "turns"} and "@" in rest:
            credentials, _, host = rest.rpartition("@")
            username, _, password = credentials.partition(":")
            servers.append(
                RTCIceServer(urls=f"{scheme}:{host}", username=username, credential=password)
            )
        else:
            servers.append(RTCIceServer(urls=url))
    return RTCConfiguration(iceServers=servers)
