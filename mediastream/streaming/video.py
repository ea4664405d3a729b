"""Video quality: the bitrate of aiortc's encoders.

aiortc's VP8 encoder starts at 500 kbit/s and never goes above 1.5 Mbit/s (H.264: 1 and
3 Mbit/s), settings made for webcam calls. A 512×512 CT slice with fine structure needs more to
stay diagnostic, so the rate is raised here — and pinned: aiortc follows the receiver's bandwidth
estimate (REMB) by re-creating its encoder whenever the target moves by more than 10 %, and each
re-creation restarts rate control with a keyframe, visibly blurring a still slice for a while
(measured in Chromium: 45 → 39 dB two seconds after a change). On a slow link, lower
``--video-kbps`` instead. aiortc reads these limits from module constants — there is no
per-connection option — so this is process-wide, set once when the app is created.
"""

from __future__ import annotations

from aiortc.codecs import h264, vpx

__all__ = ["configure_video_bitrate"]


def configure_video_bitrate(kbps: int) -> None:
    """Encode video at `kbps` kbit/s, whatever the receiver's estimate says."""
    if kbps < 300:
        raise ValueError(f"kbps must be at least 300, got {kbps}")
    rate = kbps * 1000
    vpx.MAX_BITRATE = h264.MAX_BITRATE = rate
    vpx.DEFAULT_BITRATE = h264.DEFAULT_BITRATE = rate
    vpx.MIN_BITRATE = h264.MIN_BITRATE = rate
