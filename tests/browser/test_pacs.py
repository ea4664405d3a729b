"""The page on a PACS-backed server (``--dicomweb``, a real Orthanc): what it shows while the
PACS is down, and that it recovers by itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mediastream.dicom.phantom import phantom_datasets
from tests.browser.client_page import TIMEOUT_MS, page_url, start_stream, wait_for_applied
from tests.browser.conftest import PageFactory, ServerFactory
from tests.conftest import dataset_bytes
from tests.orthanc import Orthanc

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc")
    yield server
    server.stop()


async def test_a_pacs_outage_is_shown_while_it_lasts(
    make_server: ServerFactory, open_page: PageFactory, orthanc: Orthanc
) -> None:
    orthanc.start()
    orthanc.stow(dataset_bytes(ds) for ds in phantom_datasets(n_slices=60, size=64))
    page = await open_page(page_url(await make_server(dicomweb=orthanc.dicomweb)))
    await start_stream(page)
    await page.fill("#image-delay", "0.05")
    await page.press("#image-delay", "Tab")
    await wait_for_applied(page, "s.image_delay === 0.05")

    orthanc.kill()
    notice = page.locator("#stream-error:has-text('The PACS cannot be reached')")
    await notice.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert await page.get_attribute("#connection", "data-state") == "streaming"

    orthanc.start()
    await page.wait_for_selector("#stream-error", state="hidden", timeout=TIMEOUT_MS)


async def test_a_pacs_down_when_the_page_opens_is_named(
    make_server: ServerFactory, open_page: PageFactory, orthanc: Orthanc
) -> None:
    page = await open_page(page_url(await make_server(dicomweb=orthanc.dicomweb)))
    status = page.locator("#library-status:has-text('The PACS cannot be reached')")
    await status.wait_for(timeout=TIMEOUT_MS)
    assert "could not be loaded" in await status.inner_text()
