"""The demo phantom stored through the library: geometry, windows and HU values survive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from mediastream.dicom.demo import install_demo
from mediastream.dicom.display import Window, apply_window
from mediastream.dicom.library import Library
from mediastream.dicom.phantom import DEMO_DESCRIPTION, phantom_datasets, phantom_hu_slice


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Library:
    library = Library(tmp_path_factory.mktemp("demo") / "library", cache_bytes=16 << 20)
    library.load()
    outcomes = install_demo(library)
    assert [o.outcome for o in outcomes] == ["stored"] * 48
    assert [o.filename for o in outcomes][:2] == ["demo-phantom-000.dcm", "demo-phantom-001.dcm"]
    return library


def test_the_demo_series_is_listed_as_specified(demo: Library) -> None:
    (info,) = demo.list_series()
    assert demo.latest_series_uid() == info.series_uid
    assert (info.modality, info.description) == ("CT", DEMO_DESCRIPTION)
    assert (info.frame_count, info.rows, info.columns) == (48, 512, 512)
    assert info.pixel_spacing == (0.7, 0.7)
    assert info.windows == (
        Window(40, 400, "SOFT TISSUE"),
        Window(-600, 1500, "LUNG"),
        Window(300, 1500, "BONE"),
    )
    assert demo.counts() == {"series": 1, "instances": 48, "frames": 48}


@pytest.mark.parametrize("index", [0, 1, 23, 47])
def test_frame_i_is_phantom_slice_i_after_the_modality_lut(demo: Library, index: int) -> None:
    uid = demo.list_series()[0].series_uid
    hu = demo.frame_values(uid, index)
    assert hu.shape == (512, 512)
    np.testing.assert_array_equal(hu, phantom_hu_slice(index))
    frame = demo.frame(uid, index)
    assert frame.window == Window(40, 400, "SOFT TISSUE") and frame.rgb is None
    expected = apply_window(phantom_hu_slice(index), Window(40, 400))
    np.testing.assert_array_equal(frame.gray, expected)


def test_the_stored_files_are_int16_with_intercept_and_positions(demo: Library) -> None:
    uid = demo.list_series()[0].series_uid
    files = sorted((demo.root / uid).glob("*.dcm"))
    assert len(files) == 48
    z = []
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        assert (ds.BitsAllocated, ds.PixelRepresentation, ds.RescaleIntercept) == (16, 1, -1024)
        assert [float(v) for v in ds.PixelSpacing] == [0.7, 0.7]
        z.append(float(ds.ImagePositionPatient[2]))
    assert sorted(z) == [5.0 * i for i in range(48)]


def test_installing_again_reports_already_stored(tmp_path: Path) -> None:
    library = Library(tmp_path / "lib", cache_bytes=0)
    first = install_demo(library, n_slices=3)
    again = install_demo(library, n_slices=3)
    assert [o.outcome for o in first] == ["stored"] * 3
    assert [o.outcome for o in again] == ["already_stored"] * 3
    expected = [ds.SOPInstanceUID for ds in phantom_datasets(3)]
    assert [o.sop_instance_uid for o in again] == expected
