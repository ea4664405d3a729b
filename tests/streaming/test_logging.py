"""Logs never carry patient identifiers, whatever happens between upload and stream."""

from __future__ import annotations

import io
import logging

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydicom.dataset import Dataset

from mediastream.client import StreamClient
from mediastream.dicom.phantom import phantom_datasets
from tests.streaming.conftest import ServerFactory

IDENTIFIERS = {
    "PatientName": "Zyxwvuts^Qwertyuiop",
    "PatientID": "PID-98765-XYZ",
    "PatientBirthDate": "19011231",
    "OtherPatientIDs": "ALT-55501-QQ",
    "PatientAddress": "17 Nowhere Lane",
}


def identified(ds: Dataset) -> bytes:
    for keyword, value in IDENTIFIERS.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


async def test_full_run_logs_no_patient_identifiers(
    make_server: ServerFactory,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    server: TestServer = await make_server()
    files = [identified(ds) for ds in phantom_datasets(n_slices=4, size=96)]
    broken = files[0][: len(files[0]) // 2]  # truncated: rejected, with its identifiers inside
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        for index, content in enumerate([*files, broken]):
            # A file name carrying a patient name must not reach the logs either.
            form.add_field("files", content, filename=f"Qwertyuiop_{index}.dcm")
        response = await http.post(server.make_url("/images"), data=form)
        assert response.status == 200
        outcomes = [f["outcome"] for f in (await response.json())["files"]]
        assert outcomes == ["stored"] * 4 + ["rejected"]
        listing = await (await http.get(server.make_url("/images"))).json()
    uid = next(s["series_uid"] for s in listing["series"] if s["rows"] == 96)

    async with StreamClient(str(server.make_url(""))) as client:
        await client.start({"series": uid, "algorithm": "watershed", "playing": False})
        await client.frame_message(lambda m: True)
        reply = await client.update(algorithm="snakes", params={"x": 48, "y": 48, "radius": 20})
        await client.frame_message(lambda m: m["seq"] == reply["seq"] and m["stage"] == "final")
        await client.stop()

    captured = capfd.readouterr()
    text = "\n".join([caplog.text, captured.out, captured.err])
    assert "POST /images" in caplog.text  # the logs were captured at all
    for value in [*IDENTIFIERS.values(), "Qwertyuiop", "Zyxwvuts"]:
        assert value not in text
