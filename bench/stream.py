"""Streaming benchmark (issue 4): a real server process, aiortc viewers on loopback, JSON lines.

Viewers release a decoded frame on its RTP marker bit, as browsers do (`StreamClient`); a
latency ends at the ``received_at`` of the decoded frame whose pts matches the first ``frame``
message reflecting the change. Every case prints one JSON object per line (times in ms, medians
and nearest-rank p95 over the samples), with its target where the issue sets one, whether it is
met, and the load average (the machine is shared):

* ``first_frame_watershed`` — offer sent → first decoded frame (<= 300 ms).
* ``update_watershed_delay0`` / ``update_watershed_delay1`` — update on the data channel → first
  decoded frame with its seq (<= 60 ms median, <= 120 ms p95); parameters differ on every update
  so nothing comes from the result cache. ``update_snakes_preview`` / ``_final`` (<= 80 / 400 ms).
  Where the time goes: ``reply`` (the ``state`` answer), ``frame_msg`` (the frame message's
  arrival: render + waiting for the frame cap), ``render`` (the server's ``timing_ms.total`` for
  that picture; for snakes final only the last evolution chunk), ``msg_to_decoded`` (encode,
  RTP, decode).
* ``legacy_*`` — the older service's way against this server: ``POST /stop-stream``, a new peer
  connection and ``POST /watershed|/snakes`` with the new parameters → its first decoded frame.
  Frame rate, concurrency, leaks and quality are not repeated for REST streams: they run through
  the same session, player and track, so the figures would be the same.
* ``fps_watershed_delay0`` / ``fps_snakes_delay0`` — decoded frames per second over 10 s after
  the series has looped once (>= 30, the frame cap, within one frame); ``sent_fps`` counts the
  server's frame messages; CPU used, and the server's time waiting for a CPU.
* ``concurrent_sessions`` — 8 viewers at image_delay 0.1 (each >= 9 fps) while a separate process
  pings the WebSocket every 50 ms (round trip p99 <= 50 ms).
* ``open_close_cycles`` — 100 stream cycles, a third abrupt (a viewer process killed, or a peer
  connection closed without ``stop``): no sessions or tasks left, RSS growth <= 30 MB.
* ``psnr_still`` — algorithm none, paused: decoded frame vs the server's PNG of the slice, same
  window (>= 38 dB within 2 s). ``quality_playing`` — the same while playing at the frame cap.

A server that stops answering is aborted with its stacks dumped (``server_unresponsive``: where
its event loop is stuck), and a fresh one runs the remaining cases.

Run (WebRTC needs a private network namespace; `make bench` does this):
``unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/stream.py [--only …] [--quick]'``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.streamkit import capacity, latency  # noqa: E402
from bench.streamkit.measure import emit, require_loopback_namespace  # noqa: E402
from bench.streamkit.server import ROOT, Server  # noqa: E402
from bench.streamkit.viewers import ping_probe  # noqa: E402
from mediastream.process import restrict_ice_host_addresses  # noqa: E402

GROUPS = ("first_frame", "update", "legacy", "fps", "concurrent", "leak", "psnr")
CASE_TIMEOUT = 300.0
Case = Callable[[Server], Awaitable[None]]


def plan(args: argparse.Namespace) -> list[tuple[str, str, Case]]:
    """(group, name, case) in running order."""
    rng = random.Random(args.seed)
    quick = args.quick
    n_first = args.samples or (3 if quick else 20)
    n_update = args.samples or (5 if quick else 30)
    window = 3.0 if quick else 10.0
    psnr_slices = [24] if quick else [6, 16, 24, 32, 40]
    return [
        ("first_frame", "first_frame", lambda s: latency.case_first_frame(s, n_first, rng)),
        ("legacy", "legacy_first_frame",
         lambda s: latency.case_legacy_first_frame(s, n_first, rng)),
        ("update", "update_watershed_delay0",
         lambda s: latency.case_update_watershed(s, n_update, 0, rng)),
        ("update", "update_watershed_delay1",
         lambda s: latency.case_update_watershed(s, n_update, 1, rng)),
        ("update", "update_snakes", lambda s: latency.case_update_snakes(s, n_update, rng)),
        ("legacy", "legacy_watershed_delay0",
         lambda s: latency.case_legacy_change(s, n_first, "watershed", 0, rng)),
        ("legacy", "legacy_watershed_delay1",
         lambda s: latency.case_legacy_change(s, n_first, "watershed", 1, rng)),
        ("legacy", "legacy_snakes",
         lambda s: latency.case_legacy_change(s, n_first, "snakes", 1, rng)),
        ("fps", "fps_watershed", lambda s: capacity.case_fps(s, "watershed", window)),
        ("fps", "fps_snakes", lambda s: capacity.case_fps(s, "snakes", window)),
        ("concurrent", "concurrent", lambda s: capacity.case_concurrent(s, 8, window)),
        ("psnr", "psnr_still", lambda s: capacity.case_psnr(s, psnr_slices, 2.2)),
        ("psnr", "quality_playing",
         lambda s: capacity.case_quality_playing(s, 2.0 if quick else 5.0)),
        ("leak", "open_close_cycles", lambda s: capacity.case_cycles(s, 9 if quick else 100)),
    ]  # fmt: skip


async def run(args: argparse.Namespace) -> list[str]:
    """Run the chosen cases; the names of those that failed (not those that missed a target)."""
    restrict_ice_host_addresses(["127.0.0.1"])  # this process's peers, like the server's
    failed: list[str] = []
    extra = [] if args.video_kbps is None else ["--video-kbps", str(args.video_kbps)]
    server = await Server(extra, args.server_script).__aenter__()
    try:
        emit("setup", quick=args.quick, slices=server.slices, cpus=os.cpu_count(), server=extra)
        for group, name, case in plan(args):
            if group not in args.only:
                continue
            try:
                await asyncio.wait_for(case(server), CASE_TIMEOUT)
            except Exception as exc:  # report, and go on with the other cases
                failed.append(name)
                emit("error", failed_case=name, error=f"{type(exc).__name__}: {exc}")
                traceback.print_exc()
                if await server.responsive():
                    await server.wait_idle()
                    continue
                # A server that stopped answering: show where it is stuck, start a new one.
                stack = server.dump_stacks()
                emit("server_unresponsive", failed_case=name, main_thread=stack.splitlines())
                await server.__aexit__()
                server = await Server(extra, args.server_script).__aenter__()
    finally:
        await server.__aexit__()
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        type=lambda s: [g.strip() for g in s.split(",") if g.strip()],
        default=list(GROUPS),
        help=f"comma-separated groups to run: {','.join(GROUPS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke test")
    parser.add_argument("--samples", type=int, default=None, help="samples per latency case")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--video-kbps", type=int, default=None, help="passed to the server")
    parser.add_argument(
        "--server-script",
        type=Path,
        default=ROOT / "server.py",
        help="the server to measure (default: this checkout's server.py)",
    )
    # Child processes of the benchmark itself.
    parser.add_argument("--ping-probe", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--probe-seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--probe-interval", type=float, default=0.05, help=argparse.SUPPRESS)
    parser.add_argument("--abrupt-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ping_probe:
        rtts = asyncio.run(ping_probe(args.ping_probe, args.probe_seconds, args.probe_interval))
        print(json.dumps(rtts), flush=True)
        return
    require_loopback_namespace()
    if args.abrupt_child:
        asyncio.run(capacity.abrupt_child(args.abrupt_child))
        return
    unknown = set(args.only) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s) {', '.join(sorted(unknown))}; choose from {GROUPS}")
    failed = asyncio.run(run(args))
    if failed:  # the figures are incomplete: let `make bench` notice
        sys.exit(f"bench/stream.py: case(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
