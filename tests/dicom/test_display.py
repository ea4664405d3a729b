"""The display pipeline verbs against reference values and pydicom's own processing functions."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut
from pydicom.pixels import apply_modality_lut as pydicom_modality_lut

from mediastream.dicom.decode import decode_frame
from mediastream.dicom.display import (
    DisplayFrame,
    Window,
    apply_lut,
    apply_modality_lut,
    apply_voi,
    apply_window,
    display_frame,
    luminance,
    robust_window,
    to_uint8,
    voi_lut,
    window_presets,
)

from .conftest import pydicom_file


def decoded(name: str, index: int = 0) -> tuple[Dataset, NDArray[np.generic], str]:
    return decode_frame(pydicom_file(name), index)


def dicom_linear(x: float, c: float, w: float) -> int:
    """PS3.3 C.11.2.1.2.1 for one value, output range 0..255, rounded half up."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0
    if x > c - 0.5 + (w - 1) / 2:
        return 255
    return math.floor(((x - (c - 0.5)) / (w - 1) + 0.5) * 255 + 0.5)


# -- Window ----------------------------------------------------------------------------------


def test_window_rejects_a_width_below_one_naming_the_attribute() -> None:
    with pytest.raises(ValueError, match=r"^Window Width \(0028,1051\) must be >= 1, got 0$"):
        Window(40, 0)


def test_window_rejects_a_non_finite_center() -> None:
    with pytest.raises(ValueError, match=r"Window Center \(0028,1050\) must be a finite number"):
        Window(math.nan, 400)


def test_window_to_json() -> None:
    assert Window(40, 400, "SOFT").to_json() == {"center": 40.0, "width": 400.0, "name": "SOFT"}


# -- VOI: windows ----------------------------------------------------------------------------


def test_linear_window_matches_the_dicom_formula_value_by_value() -> None:
    x = np.arange(-300, 400, dtype=np.int16)
    out = apply_window(x, Window(40, 400))
    assert out.dtype == np.uint8
    assert out.tolist() == [dicom_linear(float(v), 40, 400) for v in x]


def test_linear_window_reference_points() -> None:
    x = np.array([-160, -159, 39.5, 238, 239, 240], dtype=np.float32)
    assert apply_window(x, Window(40, 400)).tolist() == [0, 1, 128, 254, 255, 255]


def test_linear_window_of_width_one_is_a_threshold() -> None:
    x = np.array([9, 9.5, 10, 11], dtype=np.float32)
    assert apply_window(x, Window(10, 1)).tolist() == [0, 0, 255, 255]


def test_linear_exact_and_sigmoid_functions() -> None:
    x = np.array([-160.0, 40.0, 240.0], dtype=np.float32)
    assert apply_window(x, Window(40, 400), function="LINEAR_EXACT").tolist() == [0, 128, 255]
    # sigmoid: 255 / (1 + exp(-4 (x - c) / w)) = 255 / (1 + e^2), 255 / 2, 255 / (1 + e^-2)
    assert apply_window(x, Window(40, 400), function="SIGMOID").tolist() == [30, 128, 225]


def test_apply_window_rejects_an_unknown_function() -> None:
    with pytest.raises(ValueError, match=r"VOI LUT Function \(0028,1056\) must be one of"):
        apply_window(np.zeros(3), Window(0, 10), function="LOG")


def test_apply_window_does_not_modify_its_input() -> None:
    x = np.linspace(-1000, 1000, 64, dtype=np.float32)
    before = x.copy()
    apply_window(x, Window(0, 100))
    np.testing.assert_array_equal(x, before)


def test_robust_window_ignores_outliers_unlike_min_max() -> None:
    values = np.tile(np.arange(1000, dtype=np.float32), 100)
    values[:3] = [-1e6, 1e6, 5e5]
    window = robust_window(values)
    low, high = (
        window.center - 0.5 - (window.width - 1) / 2,
        window.center - 0.5 + (window.width - 1) / 2,
    )
    assert 0 <= low <= 10 and 990 <= high <= 1000
    out = apply_window(values, window)
    assert out[3:].min() == 0 and out[3:].max() == 255
    assert np.count_nonzero((out > 0) & (out < 255)) > 0.95 * values.size


def test_robust_window_of_a_constant_image_is_valid() -> None:
    window = robust_window(np.full((8, 8), 7, dtype=np.int16))
    assert window.width == 1 and apply_window(np.array([6, 7, 8]), window).tolist() == [0, 0, 255]


# -- Modality LUT ----------------------------------------------------------------------------


def test_rescale_matches_pydicom_on_ct_small() -> None:
    ds, arr, _ = decoded("CT_small.dcm")
    ours = apply_modality_lut(arr, ds)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours.astype(np.float64), pydicom_modality_lut(arr, ds), atol=1e-3)


def test_modality_lut_returns_the_input_without_rescale() -> None:
    ds, arr, _ = decoded("MR_small.dcm")
    assert "RescaleSlope" not in ds
    assert apply_modality_lut(arr, ds) is arr


def lut_item(descriptor: list[int], data: list[int]) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = descriptor
    item.LUTData = data
    return item


def test_modality_lut_sequence_maps_and_clamps() -> None:
    ds = Dataset()
    ds.ModalityLUTSequence = [lut_item([4, 10, 16], [100, 200, 300, 400])]
    arr = np.array([8, 10, 12, 13, 20], dtype=np.uint16)
    assert apply_modality_lut(arr, ds).tolist() == [100, 100, 300, 400, 400]


def test_rescale_from_the_pixel_value_transformation_functional_group() -> None:
    ds = Dataset()
    transform = Dataset()
    transform.RescaleSlope = 2
    transform.RescaleIntercept = -10
    group = Dataset()
    group.PixelValueTransformationSequence = [transform]
    ds.SharedFunctionalGroupsSequence = [group]
    assert apply_modality_lut(np.array([0, 5], dtype=np.int16), ds).tolist() == [-10.0, 0.0]


# -- VOI: presets and LUTs -------------------------------------------------------------------


def test_window_presets_of_the_demo_phantom_keep_their_names(small_phantom: list[Dataset]) -> None:
    assert window_presets(small_phantom[0]) == (
        Window(40, 400, "SOFT TISSUE"),
        Window(-600, 1500, "LUNG"),
        Window(300, 1500, "BONE"),
    )


def test_window_presets_skip_invalid_widths() -> None:
    ds = Dataset()
    ds.WindowCenter = [40, 50]
    ds.WindowWidth = [0, 350]
    assert window_presets(ds) == (Window(50, 350),)


def test_voi_lut_sequence_is_scaled_to_eight_bits() -> None:
    ds = Dataset()
    ds.VOILUTSequence = [lut_item([3, 100, 12], [0, 2048, 4095])]
    lut = voi_lut(ds)
    assert lut is not None
    arr = np.array([50, 100, 101, 102, 500], dtype=np.int16)
    assert apply_lut(arr, lut).tolist() == [0, 0, 128, 255, 255]


def test_apply_voi_precedence(small_phantom: list[Dataset]) -> None:
    ds = small_phantom[0]
    hu = np.array([[-1000, 0, 40, 1000]], dtype=np.float32)
    _, used = apply_voi(hu, ds)
    assert used == Window(40, 400, "SOFT TISSUE")  # the file's first preset
    explicit = Window(0, 2000)
    out, used = apply_voi(hu, ds, explicit)
    assert used is explicit and out.tolist() == [[0, 128, 133, 255]]
    ds_lut = Dataset()
    ds_lut.VOILUTSequence = [lut_item([2, 0, 8], [10, 20])]
    out, used = apply_voi(np.array([0, 1]), ds_lut)
    assert used is None and out.tolist() == [10, 20]
    _, used = apply_voi(hu, Dataset())
    assert used is not None and used.name == "auto"


# -- photometric handling --------------------------------------------------------------------


def test_monochrome1_is_inverted() -> None:
    ds, arr, photometric = decoded("6154")  # dicomdirtests/77654033/CR1/6154, a CR image
    assert photometric == "MONOCHROME1"
    frame = display_frame(arr, ds, photometric=photometric)
    mono2 = copy.deepcopy(ds)
    mono2.PhotometricInterpretation = "MONOCHROME2"
    upright = display_frame(arr, mono2, photometric="MONOCHROME2")
    assert frame.window == upright.window is not None
    np.testing.assert_array_equal(frame.gray, 255 - upright.gray)
    assert frame.gray.min() < frame.gray.max()


RGB_BANDS = [  # SC_rgb*: ten horizontal bands of these colours, sampled at column 50
    (255, 0, 0),
    (255, 128, 128),
    (0, 255, 0),
    (128, 255, 128),
    (0, 0, 255),
    (128, 128, 255),
    (0, 0, 0),
    (64, 64, 64),
    (192, 192, 192),
    (255, 255, 255),
]


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("SC_rgb_rle.dcm", 0),
        ("SC_rgb_rle_16bit.dcm", 0),
        ("SC_rgb_rle_32bit.dcm", 0),
        ("SC_ybr_full_422_uncompressed.dcm", 5),
        ("SC_rgb_jpeg_dcmtk.dcm", 5),
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", 5),
    ],
)
def test_colour_sources_become_rgb_with_reference_colours(name: str, tolerance: int) -> None:
    ds, arr, photometric = decoded(name)
    frame = display_frame(arr, ds, photometric=photometric)
    assert frame.rgb is not None and frame.rgb.shape == (100, 100, 3) and frame.window is None
    got = np.array([frame.rgb[row, 50] for row in range(5, 100, 10)], dtype=int)
    assert np.abs(got - np.array(RGB_BANDS)).max() <= tolerance
    # luminance, ITU-R BT.601: pure red is 0.299 * 255 = 76
    assert abs(int(frame.gray[5, 50]) - 76) <= 1 + tolerance
    np.testing.assert_array_equal(frame.gray, luminance(frame.rgb))


def test_palette_colour_becomes_rgb_through_its_lut() -> None:
    ds, arr, photometric = decoded("examples_palette.dcm")
    assert photometric == "PALETTE COLOR"
    frame = display_frame(arr, ds, photometric=photometric)
    reference = apply_color_lut(arr, dcmread(pydicom_file("examples_palette.dcm")))
    assert frame.rgb is not None and frame.rgb.shape == (*arr.shape, 3)
    np.testing.assert_array_equal(frame.rgb, to_uint8(reference, 16))


def test_to_uint8_scales_by_bits_stored() -> None:
    assert to_uint8(np.array([0, 2048, 4095], dtype=np.uint16), 12).tolist() == [0, 128, 255]


def test_display_frame_outputs_are_readonly_contiguous_and_inputs_untouched() -> None:
    ds, arr, photometric = decoded("CT_small.dcm")
    before = arr.copy()
    frame = display_frame(arr, ds, photometric=photometric)
    assert isinstance(frame, DisplayFrame) and frame.rgb is None
    assert frame.gray.dtype == np.uint8 and frame.gray.shape == (128, 128)
    assert frame.gray.flags.c_contiguous and not frame.gray.flags.writeable
    assert arr.flags.writeable
    np.testing.assert_array_equal(arr, before)


def test_ct_small_without_presets_uses_the_robust_window() -> None:
    ds, arr, photometric = decoded("CT_small.dcm")
    frame = display_frame(arr, ds, photometric=photometric)
    assert frame.window is not None and frame.window.name == "auto"
    hu = np.asarray(pydicom_modality_lut(arr, ds))
    low, high = np.percentile(hu, [0.5, 99.5])
    assert frame.window.center - 0.5 - (frame.window.width - 1) / 2 == pytest.approx(low)
    assert frame.window.center - 0.5 + (frame.window.width - 1) / 2 == pytest.approx(high)


def test_mr_small_uses_its_window_preset() -> None:
    ds, arr, photometric = decoded("MR_small.dcm")
    frame = display_frame(arr, ds, photometric=photometric)
    assert frame.window == Window(600, 1600)
    expected = [dicom_linear(float(v), 600, 1600) for v in arr.reshape(-1)]
    assert frame.gray.reshape(-1).tolist() == expected
