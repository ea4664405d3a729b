"""Video quality: the bitrate range of aiortc's encoders.

aiortc's VP8 encoder starts at 500 kbit/s and never goes above 1.5 Mbit/s (H.264: 1 and
3 Mbit/s), settings made for webcam calls. A 512×512 CT slice with fine structure needs more to
stay diagnostic, so the range is raised here. The receiver's bandwidth estimate (REMB) still moves
the rate within [max/4, max]: with several viewers on a busy machine it falls, and encoding and
decoding cost less. (Each move of more than 10 % makes aiortc re-create its encoder, which blurs a
still slice for a while — measured in Chromium, 45 dB fell to 39 dB two seconds after a change
of parameters. Pinning the rate
avoids that but, measured with 8 viewers, costs a quarter of their frame rate.) aiortc reads
these limits from module constants — there is no per-connection option — so this is
process-wide, set once when the app is created.
"""

from __future__ import annotations

from aiortc.codecs import h264, vpx

__all__ = ["configure_video_bitrate"]


def configure_video_bitrate(max_kbps: int) -> None:
    """Let the video encoders use up to `max_kbps` kbit/s, starting at that rate."""
    if max_kbps < 300:
        raise ValueError(f"max_kbps must be at least 300, got {max_kbps}")
    top = max_kbps * 1000
    vpx.MAX_BITRATE = h264.MAX_BITRATE = top
    vpx.DEFAULT_BITRATE = h264.DEFAULT_BITRATE = top
    vpx.MIN_BITRATE = h264.MIN_BITRATE = top // 4
