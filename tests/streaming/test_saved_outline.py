"""``seg``: while the stream plays, each slice's outline comes from a saved 3-D segmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mediastream.dicom.library import Library
from mediastream.dicom.segstore import SegStore
from mediastream.streaming.render import Renderer, ResultCache
from mediastream.streaming.state import InvalidUpdate, StreamState, apply_update
from mediastream.volumes import SegmentationRequest, segment_series
from segmentation import get_algorithm
from tests.blob_series import SIZE, SLICES, blob_series


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Library, SegStore, str, str]:
    root = tmp_path / "uploads"
    library = Library(root, cache_bytes=0)
    library.load()
    for i, ds in enumerate(blob_series()):
        library.ingest_dataset(ds, filename=f"{i}.dcm")
    store = SegStore(root)
    store.load()
    uid = library.latest_series_uid()
    assert uid is not None
    algorithm = get_algorithm("region_grow")
    request = SegmentationRequest(
        uid, algorithm, algorithm.parse_params({"x": 24, "y": 32}), 8, True, "blob"
    )
    record = segment_series(library, store, request)
    return library, store, uid, record.seg_uid


def test_the_outline_comes_from_the_saved_segmentation(
    stored: tuple[Library, SegStore, str, str],
) -> None:
    library, store, uid, seg_uid = stored
    record = store.get(uid, seg_uid)
    covered = {s.index: s.area_mm2 for s in record.slices}
    renderer = Renderer(library, ResultCache(64 << 20), store)
    state = StreamState(series=uid, frame_count=SLICES, shape=(SIZE, SIZE))
    # The click algorithm's own parameters do not matter: the saved result is drawn.
    state = apply_update(state, {"algorithm": "region_grow", "seg": seg_uid}, library)
    spacing = library.get_series(uid).pixel_spacing
    assert spacing is not None
    for index in range(SLICES):
        frame = renderer.final(apply_update(state, {"index": index}, library))
        assert frame.stats["seg"] == seg_uid and frame.stats["label"] == "blob"
        if index in covered:
            assert frame.stats["found"] is True
            area = frame.stats["area_px"] * spacing[0] * spacing[1]
            assert area == pytest.approx(covered[index])
            assert frame.mask is not None and np.count_nonzero(frame.mask) > 0
        else:
            assert frame.stats["found"] is False
            assert "does not reach this slice" in frame.stats["reason"]


def test_seg_is_a_state_field_reset_by_another_series(
    stored: tuple[Library, SegStore, str, str],
) -> None:
    library, _, uid, seg_uid = stored
    state = StreamState(series=uid, frame_count=SLICES, shape=(SIZE, SIZE))
    state = apply_update(state, {"seg": seg_uid}, library)
    assert state.to_json()["seg"] == seg_uid
    assert apply_update(state, {"seg": None}, library).seg is None
    with pytest.raises(InvalidUpdate, match="seg must be"):
        apply_update(state, {"seg": "../x"}, library)


def test_an_unknown_seg_is_an_error_the_player_reports(
    stored: tuple[Library, SegStore, str, str],
) -> None:
    from mediastream.dicom.segstore import SegmentationNotFound

    library, store, uid, _ = stored
    renderer = Renderer(library, ResultCache(64 << 20), store)
    state = StreamState(series=uid, frame_count=SLICES, shape=(SIZE, SIZE), seg="1.2.3")
    with pytest.raises(SegmentationNotFound):
        renderer.final(state)
