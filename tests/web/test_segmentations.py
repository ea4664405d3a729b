"""POST/GET/DELETE /images/{series_uid}/segmentations and the DICOM SEG they keep."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest

from mediastream.dicom.phantom import phantom_datasets
from tests.conftest import dataset_bytes
from tests.web.conftest import Client, ClientFactory, upload

SLICES, SIZE = 12, 128
# The phantom's aorta (150 HU, through every slice) at 128²: a structure to follow.
AORTA = {"x": 67, "y": 74}


@pytest.fixture(scope="module")
def series_files() -> list[bytes]:
    return [dataset_bytes(ds) for ds in phantom_datasets(n_slices=SLICES, size=SIZE)]


async def stored(client: Client, files: list[bytes]) -> str:
    status, body = await upload(client, [(f"{i}.dcm", b) for i, b in enumerate(files)])
    assert status == 200, body
    [series] = (await (await client.get("/images")).json())["series"]
    return str(series["series_uid"])


async def post(client: Client, series_uid: str, body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"/images/{series_uid}/segmentations", json=body)
    return response.status, await response.json()


def reference_mask(
    client: Client, series_uid: str, body: dict[str, Any]
) -> tuple[np.ndarray, list[str]]:
    """The same propagation run directly on the stored series, and its SOP Instance UIDs."""
    from mediastream.keys import LIBRARY
    from segmentation import get_algorithm
    from segmentation.propagation import propagate

    library = client.app[LIBRARY]
    series = library.get_series(series_uid)
    algorithm = get_algorithm(body["algorithm"])
    result = propagate(
        lambda i: (library.frame(series_uid, i).gray, library.frame_values(series_uid, i)),
        series.frame_count,
        body["index"],
        algorithm,
        algorithm.parse_params(body["params"]),
        spacing=series.pixel_spacing,
    )
    uids = [r.header.sop_instance_uid for r in library.instances(series_uid)]
    return result.volume_mask(), uids


async def test_propagation_is_stored_as_seg_that_reads_back_to_the_same_mask(
    client: Client, series_files: list[bytes]
) -> None:
    series_uid = await stored(client, series_files)
    body = {"algorithm": "region_grow", "params": AORTA, "index": 6, "label": "aorta"}
    status, created = await post(client, series_uid, body)
    assert status == 201, created
    assert set(created) >= {"seg_uid", "series_uid", "label", "volume_ml", "slices", "url"}
    assert created["series_uid"] == series_uid and created["label"] == "aorta"
    indices = [s["index"] for s in created["slices"]]
    assert 6 in indices and indices == list(range(indices[0], indices[-1] + 1))
    assert len(indices) > 3  # the aorta runs through the series
    assert created["url"] == f"images/{series_uid}/segmentations/{created['seg_uid']}.dcm"
    areas = [s["area_mm2"] for s in created["slices"]]
    assert all(a > 0 for a in areas)

    response = await client.get("/" + created["url"])
    assert response.status == 200
    assert response.content_type == "application/dicom"
    data = await response.read()
    seg = hd.seg.segread(io.BytesIO(data))
    assert seg.SegmentationType == "BINARY"
    assert seg.NumberOfFrames == len(indices)  # frames only where the mask is not empty
    [segment] = seg.SegmentSequence
    assert segment.SegmentLabel == "aorta"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "15825003"  # SCT Aorta
    algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "region_grow"
    parameters = str(algorithm.AlgorithmParameters)
    for name in ("x=67", "y=74", "tolerance=0.0", "smoothing=5.0"):
        assert name in parameters

    expected, uids = reference_mask(client, series_uid, body)
    rebuilt = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=[1], assert_missing_frames_are_empty=True
    )[..., 0].astype(bool)
    assert np.array_equal(rebuilt, expected)
    # Volume: voxels × pixel spacing × the spacing between the slices' positions.
    datasets = sorted(
        (pydicom.dcmread(io.BytesIO(b)) for b in series_files),
        key=lambda d: float(d.ImagePositionPatient[2]),
    )
    step = float(datasets[1].ImagePositionPatient[2]) - float(datasets[0].ImagePositionPatient[2])
    row_mm, col_mm = (float(v) for v in datasets[0].PixelSpacing)
    assert created["volume_ml"] == pytest.approx(
        expected.sum() * row_mm * col_mm * abs(step) / 1000, rel=1e-3
    )
    # Each frame copies its source's geometry.
    by_uid = {str(d.SOPInstanceUID): d for d in datasets}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        source_uid = (
            frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        )
        position = frame.PlanePositionSequence[0].ImagePositionPatient
        assert [float(v) for v in position] == pytest.approx(
            [float(v) for v in by_uid[source_uid].ImagePositionPatient]
        )


async def test_seg_passes_dciodvfy_without_errors(
    client: Client, series_files: list[bytes], tmp_path: Path
) -> None:
    dciodvfy = shutil.which("dciodvfy")
    assert dciodvfy, "dciodvfy is missing: install Debian's dicom3tools (make deps)"
    series_uid = await stored(client, series_files)
    status, created = await post(
        client,
        series_uid,
        {"algorithm": "region_grow", "params": AORTA, "index": 6, "label": "Aorta"},
    )
    assert status == 201
    path = tmp_path / "seg.dcm"
    path.write_bytes(await (await client.get("/" + created["url"])).read())
    report = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=60)
    errors = [line for line in report.stderr.splitlines() if line.startswith("Error")]
    assert errors == [], report.stderr


async def test_one_slice_only_and_the_label_defaults_to_the_algorithm(
    client: Client, series_files: list[bytes]
) -> None:
    series_uid = await stored(client, series_files)
    status, created = await post(
        client,
        series_uid,
        {"algorithm": "region_grow", "params": AORTA, "index": 4, "propagate": False},
    )
    assert status == 201, created
    assert [s["index"] for s in created["slices"]] == [4]
    assert created["label"] == "region_grow"


async def test_list_download_delete_and_restart(
    make_client: ClientFactory, series_files: list[bytes]
) -> None:
    client = await make_client()
    series_uid = await stored(client, series_files)
    _, first = await post(
        client,
        series_uid,
        {"algorithm": "region_grow", "params": AORTA, "index": 6, "label": "aorta"},
    )
    _, second = await post(
        client,
        series_uid,
        {"algorithm": "region_grow", "params": AORTA, "index": 6, "propagate": False},
    )
    listed = await (await client.get(f"/images/{series_uid}/segmentations")).json()
    assert [s["seg_uid"] for s in listed["segmentations"]] == [first["seg_uid"], second["seg_uid"]]
    data = await (await client.get("/" + first["url"])).read()
    await client.close()

    restarted = await make_client()  # the same library folder
    listed = await (await restarted.get(f"/images/{series_uid}/segmentations")).json()
    assert [s["seg_uid"] for s in listed["segmentations"]] == [first["seg_uid"], second["seg_uid"]]
    assert listed["segmentations"][0]["volume_ml"] == first["volume_ml"]
    assert await (await restarted.get("/" + first["url"])).read() == data

    response = await restarted.delete(f"/images/{series_uid}/segmentations/{first['seg_uid']}")
    assert response.status == 200
    listed = await (await restarted.get(f"/images/{series_uid}/segmentations")).json()
    assert [s["seg_uid"] for s in listed["segmentations"]] == [second["seg_uid"]]
    assert (await restarted.get("/" + first["url"])).status == 404
    again = await restarted.delete(f"/images/{series_uid}/segmentations/{first['seg_uid']}")
    assert again.status == 404
    assert (await again.json())["error"] == "segmentation_not_found"


async def test_uploaded_seg_is_stored_as_sent_and_listed_with_its_series(
    client: Client, series_files: list[bytes], make_client: ClientFactory
) -> None:
    series_uid = await stored(client, series_files)
    _, created = await post(
        client,
        series_uid,
        {"algorithm": "region_grow", "params": AORTA, "index": 6, "label": "aorta"},
    )
    data = await (await client.get("/" + created["url"])).read()
    await client.delete(f"/images/{series_uid}/segmentations/{created['seg_uid']}")

    status, body = await upload(client, [("seg.dcm", data)])
    assert status == 200, body
    [outcome] = body["files"]
    assert outcome["outcome"] == "stored"
    assert outcome["series_uid"] == series_uid
    assert outcome["sop_instance_uid"] == created["seg_uid"]
    listed = await (await client.get(f"/images/{series_uid}/segmentations")).json()
    [entry] = listed["segmentations"]
    assert entry["origin"] == "uploaded" and entry["label"] == "aorta"
    # Measured against its series as if made here.
    assert entry["volume_ml"] == pytest.approx(created["volume_ml"], rel=1e-6)
    assert entry["slices"] == created["slices"]
    assert await (await client.get("/" + entry["url"])).read() == data  # byte for byte
    # Not a new series: the image list is unchanged.
    assert len((await (await client.get("/images")).json())["series"]) == 1
    status, body = await upload(client, [("seg.dcm", data)])
    assert body["files"][0]["outcome"] == "already_stored"


async def test_uploaded_seg_of_an_unknown_series_is_refused(
    make_client: ClientFactory, series_files: list[bytes], tmp_path: Path
) -> None:
    client = await make_client()
    series_uid = await stored(client, series_files)
    _, created = await post(
        client, series_uid, {"algorithm": "region_grow", "params": AORTA, "index": 6}
    )
    data = await (await client.get("/" + created["url"])).read()
    await client.delete(f"/images/{series_uid}")  # the series and its segmentations go
    status, body = await upload(client, [("seg.dcm", data)])
    assert status == 422
    [outcome] = body["files"]
    assert outcome["outcome"] == "rejected"
    assert "not stored" in outcome["reason"]


@pytest.mark.parametrize(
    ("body", "code", "phrase"),
    [
        (
            {"algorithm": "region_grow", "params": AORTA, "index": 99},
            "invalid_index",
            "between 0 and 11",
        ),
        (
            {"algorithm": "region_grow", "params": AORTA, "index": -1},
            "invalid_index",
            "between 0 and 11",
        ),
        (
            {"algorithm": "region_grow", "params": {"x": 500, "y": 10}, "index": 3},
            "invalid_params",
            "x must be",
        ),
        ({"algorithm": "region_grow", "params": {"q": 1}, "index": 3}, "invalid_params", "q"),
        (
            {"algorithm": "watershed", "params": {}, "index": 3},
            "invalid_algorithm",
            "click algorithm",
        ),
        ({"algorithm": "nope", "params": {}, "index": 3}, "invalid_algorithm", "unknown algorithm"),
        (
            {"algorithm": "region_grow", "params": AORTA, "index": 3, "label": ""},
            "invalid_label",
            "label",
        ),
        (
            {"algorithm": "region_grow", "params": AORTA, "index": 3, "propagate": "yes"},
            "invalid_request",
            "propagate",
        ),
    ],
)
async def test_bad_requests_get_json_errors(
    client: Client, series_files: list[bytes], body: dict[str, Any], code: str, phrase: str
) -> None:
    series_uid = await stored(client, series_files)
    status, error = await post(client, series_uid, body)
    assert status == 422, error
    assert error["error"] == code
    assert phrase in error["detail"]


async def test_a_click_on_nothing_says_where(client: Client, series_files: list[bytes]) -> None:
    series_uid = await stored(client, series_files)
    # Outside the body: air, nothing to grow.
    status, error = await post(
        client, series_uid, {"algorithm": "region_grow", "params": {"x": 2, "y": 2}, "index": 5}
    )
    assert status == 422
    assert error["error"] == "nothing_found"
    assert error["detail"] == "nothing found at (2, 2) on slice 5."
    listed = await (await client.get(f"/images/{series_uid}/segmentations")).json()
    assert listed["segmentations"] == []


async def test_unknown_series_and_segmentation(client: Client) -> None:
    status, error = await post(client, "1.2.3", {"algorithm": "region_grow", "params": AORTA})
    assert status == 404 and error["error"] == "series_not_found"
    response = await client.get("/images/1.2.3/segmentations")
    assert response.status == 404
    response = await client.get("/images/1.2.3/segmentations/1.2.4.dcm")
    assert response.status == 404
    assert (await response.json())["error"] == "segmentation_not_found"


async def test_body_must_be_a_json_object(client: Client, series_files: list[bytes]) -> None:
    series_uid = await stored(client, series_files)
    response = await client.post(f"/images/{series_uid}/segmentations", data=b"[1")
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_json"
