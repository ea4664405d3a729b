"""Slice ordering: position along the slice normal, then Instance Number, then SOP Instance UID."""

from __future__ import annotations

import random
from typing import TypeVar

import numpy as np
import pytest
from pydicom.dataset import Dataset

from mediastream.dicom.ingest import InstanceHeader
from mediastream.dicom.library import Library
from mediastream.dicom.phantom import phantom_hu_slice
from mediastream.dicom.series import InstanceRecord, SeriesView, order_instances

T = TypeVar("T")
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def record(
    sop: str,
    *,
    position: tuple[float, float, float] | None = None,
    orientation: tuple[float, float, float, float, float, float] | None = AXIAL,
    number: int | None = None,
    frames: int = 1,
) -> InstanceRecord:
    header = InstanceHeader(
        sop_instance_uid=sop,
        series_instance_uid="1.2.3",
        transfer_syntax="1.2.840.10008.1.2.1",
        frames=frames,
        position=position,
        orientation=orientation if position is not None else None,
        instance_number=number,
    )
    return InstanceRecord(header, f"1.2.3/{sop}.dcm", 1, 1, 1)


def sops(records: list[InstanceRecord]) -> list[str]:
    return [r.header.sop_instance_uid for r in records]


def shuffled(items: list[T], seed: int) -> list[T]:
    out = items[:]
    random.Random(seed).shuffle(out)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_axial_slices_sort_by_z_ascending_whatever_the_instance_numbers(seed: int) -> None:
    # Instance numbers run the other way on purpose: position wins.
    expected = [record(f"1.9.{i}", position=(0.0, 0.0, 5.0 * i), number=20 - i) for i in range(10)]
    assert sops(order_instances(shuffled(expected, seed))) == sops(expected)


def test_oblique_slices_sort_by_projection_on_the_normal() -> None:
    c, s = float(np.cos(0.3)), float(np.sin(0.3))
    oblique = (1.0, 0.0, 0.0, 0.0, c, s)  # rows along x, columns tilted in the y-z plane
    normal = (0.0, -s, c)
    records = []
    for i in range(6):
        # slice i sits 2.5 i mm along the normal and -20 i mm along the columns: its z decreases
        x, y, z = (2.5 * i * n - 20.0 * i * col for n, col in zip(normal, oblique[3:], strict=True))
        records.append(
            record(f"1.8.{i}", position=(x + 100.0, y, z), orientation=oblique, number=6 - i)
        )
    assert records[-1].header.position is not None and records[-1].header.position[2] < 0
    assert sops(order_instances(shuffled(records, 1))) == sops(records)


def test_sagittal_slices_sort_by_x() -> None:
    sagittal = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # normal = (-1, 0, 0)
    records = [
        record(f"1.7.{i}", position=(float(-i), 5.0, 9.0), orientation=sagittal) for i in range(5)
    ]
    assert sops(order_instances(shuffled(records, 2))) == sops(records)


def test_mixed_orientations_fall_back_to_instance_number() -> None:
    records = [record(f"1.6.{i}", position=(0.0, 0.0, float(-i)), number=i) for i in range(4)]
    records.append(
        record(
            "1.6.9",
            position=(0.0, 0.0, 99.0),
            orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
            number=4,
        )
    )
    assert sops(order_instances(shuffled(records, 3))) == [
        "1.6.0",
        "1.6.1",
        "1.6.2",
        "1.6.3",
        "1.6.9",
    ]


def test_a_missing_position_falls_back_to_instance_number() -> None:
    records = [record(f"1.5.{i}", position=(0.0, 0.0, float(-i)), number=i) for i in range(4)]
    records.append(record("1.5.7", number=10))
    assert sops(order_instances(shuffled(records, 4))) == [
        "1.5.0",
        "1.5.1",
        "1.5.2",
        "1.5.3",
        "1.5.7",
    ]


def test_without_positions_or_numbers_the_uid_orders_numerically() -> None:
    records = [
        record(uid, number=None) for uid in ("1.2.10", "1.2.9", "1.2.100", "1.2.9.1", "1.10")
    ]
    records.append(record("1.2.11", number=3))  # not all have numbers: UID order for all
    assert sops(order_instances(shuffled(records, 5))) == [
        "1.2.9",
        "1.2.9.1",
        "1.2.10",
        "1.2.11",
        "1.2.100",
        "1.10",
    ]


def test_equal_positions_tie_break_on_instance_number_then_uid() -> None:
    records = [
        record("1.4.2", position=(0.0, 0.0, 1.0), number=2),
        record("1.4.1", position=(0.0, 0.0, 1.0), number=1),
        record("1.4.3", position=(0.0, 0.0, 0.0), number=9),
    ]
    assert sops(order_instances(records)) == ["1.4.3", "1.4.1", "1.4.2"]


def test_series_view_locates_frames_across_multi_frame_instances() -> None:
    view = SeriesView(
        "1.2.3",
        [
            record("1.3.1", number=1, frames=3),
            record("1.3.2", number=2, frames=1),
            record("1.3.3", number=3, frames=2),
        ],
    )
    assert view.frame_count == 6
    located = [view.locate(i) for i in range(6)]
    assert [(hit[0].header.sop_instance_uid, hit[1]) for hit in located if hit] == [
        ("1.3.1", 0),
        ("1.3.1", 1),
        ("1.3.1", 2),
        ("1.3.2", 0),
        ("1.3.3", 0),
        ("1.3.3", 1),
    ]
    assert view.locate(6) is None and view.locate(-1) is None


@pytest.mark.parametrize("seed", range(2))
def test_shuffled_ingest_gives_frames_in_slice_order(
    library: Library, small_phantom: list[Dataset], seed: int
) -> None:
    """The phantom's slice i has z = 5 i, so frame i of the stored series is phantom slice i."""
    for ds in shuffled(small_phantom, seed):
        assert library.ingest_dataset(ds, filename="x.dcm").outcome == "stored"
    uid = small_phantom[0].SeriesInstanceUID
    for i in range(8):
        np.testing.assert_array_equal(library.frame_values(uid, i), phantom_hu_slice(i, 8, 32))


def test_instance_number_ordering_through_the_library(
    library: Library, small_phantom: list[Dataset]
) -> None:
    for ds in small_phantom:
        del ds.ImagePositionPatient
        ds.InstanceNumber = 8 - ds.InstanceNumber  # reversed: slice 7 is now number 1
    for ds in shuffled(small_phantom, 9):
        library.ingest_dataset(ds, filename="x.dcm")
    uid = small_phantom[0].SeriesInstanceUID
    np.testing.assert_array_equal(library.frame_values(uid, 0), phantom_hu_slice(7, 8, 32))
    np.testing.assert_array_equal(library.frame_values(uid, 7), phantom_hu_slice(0, 8, 32))
