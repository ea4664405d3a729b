"""The encoder bitrate starts at the configured top and follows the receiver within [top/4, top]."""

from collections.abc import Iterator
from pathlib import Path

import aioice.ice
import pytest
from aiortc.codecs import h264, vpx

from mediastream.app import create_app
from mediastream.process import configured, set_video_bitrate
from mediastream.settings import Settings
from mediastream.streaming.video import bitrate_range


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
    set_video_bitrate(2400)
    encoder = encoder_class()
    assert encoder.target_bitrate == 2_400_000
    # What aiortc's RTCRtpSender does with each REMB report from the receiver.
    for estimate, expected in [(80_000, 600_000), (1_000_000, 1_000_000), (9_000_000, 2_400_000)]:
        encoder.target_bitrate = estimate
        assert encoder.target_bitrate == expected


def test_a_bitrate_too_low_to_be_useful_is_refused() -> None:
    with pytest.raises(ValueError, match="max_kbps must be at least 300, got 100"):
        bitrate_range(100)


def test_two_apps_in_one_process_leave_the_process_settings_alone(tmp_path: Path) -> None:
    """create_app changes nothing process-wide: a second app cannot overwrite the first's."""
    lookup, top = aioice.ice.get_host_addresses, vpx.MAX_BITRATE
    for kbps, host in [(1000, "10.1.2.3"), (9000, "10.3.2.1")]:
        create_app(Settings(uploads=tmp_path, video_kbps=kbps, ice_hosts=(host,)))
    assert aioice.ice.get_host_addresses is lookup
    assert vpx.MAX_BITRATE == h264.MAX_BITRATE == top


def test_process_settings_apply_for_a_block_and_are_restored() -> None:
    lookup, limits = aioice.ice.get_host_addresses, (vpx.MIN_BITRATE, vpx.MAX_BITRATE)
    with configured(Settings(video_kbps=2000, ice_hosts=("127.0.0.2", "::1"))):
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.2"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.2", "::1"]
        assert (vpx.MIN_BITRATE, vpx.MAX_BITRATE) == (500_000, 2_000_000)
    assert aioice.ice.get_host_addresses is lookup
    assert (vpx.MIN_BITRATE, vpx.MAX_BITRATE) == limits
