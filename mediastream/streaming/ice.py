"""ICE configuration: which servers to ask, and which local addresses to offer.

Two things aiortc does not let us choose per connection:

* It falls back to Google's public STUN server when no ICE servers are configured. We always pass
  an explicit list (empty by default), so gathering never waits for a server it cannot reach.
* aioice gathers host candidates on every interface *except loopback* and has no option to pick
  addresses; `--ice-host` is applied process-wide at start-up by `mediastream.process`.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiortc import RTCConfiguration, RTCIceServer

__all__ = ["rtc_configuration"]


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
