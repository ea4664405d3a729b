"""The encoder bitrate starts at the configured top and follows the receiver within [top/4, top]."""

from collections.abc import Iterator

import pytest
from aiortc.codecs import h264, vpx

from mediastream.streaming.video import configure_video_bitrate


@pytest.fixture
def restore_bitrates() -> Iterator[None]:
    names = ("MIN_BITRATE", "DEFAULT_BITRATE", "MAX_BITRATE")
    saved = {(module, name): getattr(module, name) for module in (vpx, h264) for name in names}
    yield
    for (module, name), value in saved.items():
        setattr(module, name, value)


@pytest.mark.usefixtures("restore_bitrates")
@pytest.mark.parametrize("encoder_class", [vpx.Vp8Encoder, h264.H264Encoder])
def test_remb_estimates_move_the_bitrate_within_the_range(encoder_class: type) -> None:
    configure_video_bitrate(2400)
    encoder = encoder_class()
    assert encoder.target_bitrate == 2_400_000
    # What aiortc's RTCRtpSender does with each REMB report from the receiver.
    for estimate, expected in [(80_000, 600_000), (1_000_000, 1_000_000), (9_000_000, 2_400_000)]:
        encoder.target_bitrate = estimate
        assert encoder.target_bitrate == expected


@pytest.mark.usefixtures("restore_bitrates")
def test_a_bitrate_too_low_to_be_useful_is_refused() -> None:
    with pytest.raises(ValueError, match="max_kbps must be at least 300, got 100"):
        configure_video_bitrate(100)
