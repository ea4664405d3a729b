"""Make docs/screenshot.png: the client streaming the demo series with a snake on the lung.

Not a test (pytest does not collect it). Run it once, in a private network namespace::

    unshare -n sh -c 'ip link set lo up; .venv/bin/python -m tests.browser.make_screenshot'

It starts the real application on a temporary library with the demo phantom, drives the page
as a person would (lung window, slice 31, snakes around the right lung) and saves a 1280×800
screenshot once the contour has converged.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
from pathlib import Path

from aiohttp.test_utils import TestServer
from playwright.async_api import Page, async_playwright

from mediastream.app import create_app
from mediastream.process import configure_process
from mediastream.settings import Settings
from tests.browser.client_page import TIMEOUT_MS, start_stream, wait_until_ready
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LAPTOP

DOCS = Path(__file__).resolve().parents[2] / "docs"
DEMO_SIZE = 512
# The patient's right lung (image left) on slice 31, as in bench/segmentation.py.
SLICE, LUNG_X, LUNG_Y, RADIUS, RADIUS_Y = 30, 164, 245, 70, 110


async def fill(page: Page, selector: str, value: str) -> None:
    await page.fill(selector, value)
    await page.press(selector, "Enter")


async def make_screenshot(output: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(uploads=Path(folder), demo=True, ice_hosts=("127.0.0.1",))
        server = TestServer(create_app(settings), host="127.0.0.1")
        configure_process(settings)
        await server.start_server()
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                context = await browser.new_context(
                    permissions=["camera", "microphone"], viewport=LAPTOP
                )
                page = await context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                await page.goto(str(server.make_url("/")))
                await wait_until_ready(page)

                # Set up before starting: paused on the slice, lung window, a snake around
                # the lung (its ellipse must start outside it). Starting with these, rather
                # than moving the snake after the start, keeps the picture free of the faint
                # ghosts earlier overlays leave while the video bitrate is still ramping up.
                await page.click("#play")
                await page.fill("#slice", str(SLICE))
                await page.select_option("#window-preset", label="LUNG (-600 / 1,500)")
                await page.select_option("#algorithm", "snakes")
                for name, value in [
                    ("x", LUNG_X), ("y", LUNG_Y), ("radius", RADIUS), ("radius_y", RADIUS_Y)
                ]:  # fmt: skip
                    await fill(page, f"#param-{name}-value", str(value))
                state = await start_stream(page)
                assert state["params"]["radius_y"] == RADIUS_Y, state
                await page.wait_for_selector("#readout[data-stage=final]")
                # The server keeps re-sending the still picture so the encoder can sharpen it
                # (the bitrate is still ramping up this early); let a few dozen frames pass.
                presented = await page.get_attribute("#video", "data-presented-frames")
                await page.wait_for_function(
                    "(n) => Number(document.querySelector('#video').dataset.presentedFrames) >= n",
                    arg=int(presented or 0) + 25,
                )
                await page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
                await page.mouse.move(0, 0)
                await page.screenshot(path=output)
                await browser.close()
        finally:
            await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=DOCS / "screenshot.png")
    args = parser.parse_args()
    if sorted(name for _, name in socket.if_nameindex()) != ["lo"]:
        sys.exit("Run this in a private network namespace with only loopback (see the docstring).")
    asyncio.run(make_screenshot(args.output))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
