"""A server with --token: the page opened as /?token=… keeps the token and uses it everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.client_page import (
    page_url,
    start_stream,
    wait_for_connection,
    wait_for_video_playing,
    wait_until_ready,
    write_series,
)
from tests.browser.conftest import PageFactory, ServerFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py

TOKEN = "browser-test-token-0123456789"


async def test_page_opened_with_a_token_uploads_lists_and_streams(
    make_server: ServerFactory, open_page: PageFactory, tmp_path: Path
) -> None:
    server = await make_server(token=TOKEN)
    page = await open_page(page_url(server) + f"?token={TOKEN}")
    await page.wait_for_selector("#algorithm option[value=snakes]", state="attached")  # hello
    assert "token" not in page.url  # kept for the session, not left in the address bar
    assert await page.evaluate("sessionStorage.getItem('mediastream.token')") == TOKEN

    await page.set_input_files("#file-input", write_series(tmp_path / "series", n_slices=3))
    await page.wait_for_selector("#upload-summary[data-stored='3']")
    thumbnail = page.locator("#series-list li img").first
    await thumbnail.wait_for()
    await page.wait_for_function(
        "() => { const img = document.querySelector('#series-list li img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )
    assert (await thumbnail.get_attribute("src") or "").startswith("blob:")

    await page.reload()  # the same tab's session still has the token
    await wait_until_ready(page)
    await start_stream(page)
    await wait_for_video_playing(page)
    await wait_for_connection(page, "streaming")
