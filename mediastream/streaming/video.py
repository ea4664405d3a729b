"""Video quality: the bitrate range of aiortc's encoders.

aiortc's VP8 encoder starts at 500 kbit/s and never goes above 1.5 Mbit/s (H.264: 1 and
3 Mbit/s), settings made for webcam calls. A 512×512 CT slice with fine structure needs more to
stay diagnostic, so the range is raised. The receiver's bandwidth estimate (REMB) still moves
the rate within [max/4, max]: with several viewers on a busy machine it falls, and encoding and
decoding cost less. (Each move of more than 10 % makes aiortc re-create its encoder, which blurs a
still slice for a while — measured in Chromium, 45 dB fell to 39 dB two seconds after a change
of parameters. Pinning the rate avoids that but, measured with 8 viewers, costs a quarter of
their frame rate.) aiortc reads these limits from module constants — there is no
per-connection option — so they are set once per process, by `mediastream.process`.
"""

from __future__ import annotations

__all__ = ["MIN_VIDEO_KBPS", "bitrate_range"]

MIN_VIDEO_KBPS = 300


def bitrate_range(max_kbps: int) -> tuple[int, int, int]:
    """(lowest, starting, highest) encoder bitrate in bit/s for a top of `max_kbps` kbit/s."""
    if max_kbps < MIN_VIDEO_KBPS:
        raise ValueError(f"max_kbps must be at least {MIN_VIDEO_KBPS}, got {max_kbps}")
    top = max_kbps * 1000
    return top // 4, top, top
