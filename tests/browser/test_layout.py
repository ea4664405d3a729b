"""Layout at phone and laptop widths, labels, and keyboard access."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize

from tests.browser.client_page import (
    choose_algorithm,
    start_stream,
    wait_for_applied,
    wait_for_connection,
    wait_until_ready,
)
from tests.browser.conftest import PageFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py

PHONE: ViewportSize = {"width": 390, "height": 844}

# Elements sticking out of the viewport sideways (the visually hidden file inputs are 1 px
# boxes inside the drop zone, so they need no exception).
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll('body *')]
    .filter((e) => e.getClientRects().length)
    .map((e) => [e, e.getBoundingClientRect()])
    .filter(([, r]) => r.width > 0 && (r.left < -0.5 || r.right > width + 0.5))
    .map(([e, r]) => `${e.tagName.toLowerCase()}#${e.id}.${e.className} ${r.left}..${r.right}`);
}"""

# The accessible name of an element, the way assistive technology computes it for these cases.
ACCESSIBLE_NAME = """(e) => {
  const byIds = e.getAttribute('aria-labelledby');
  if (byIds) {
    const text = (id) => document.getElementById(id)?.textContent ?? '';
    return byIds.split(/\\s+/).map(text).join(' ').trim();
  }
  if (e.getAttribute('aria-label')) return e.getAttribute('aria-label').trim();
  if (e.labels && e.labels.length) return [...e.labels].map((l) => l.textContent).join(' ').trim();
  if (['BUTTON', 'SUMMARY', 'A'].includes(e.tagName)) return e.textContent.trim();
  return '';
}"""


async def no_horizontal_overflow(page: Page) -> None:
    scroll, client = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, f"the page scrolls sideways: {scroll} > {client}"
    assert await page.evaluate(OVERFLOWING) == []


async def test_phone_width_fits_and_every_control_is_reachable(
    open_library_page: PageFactory,
) -> None:
    page = await open_library_page(viewport=PHONE)
    await wait_until_ready(page)
    await no_horizontal_overflow(page)

    await start_stream(page)
    await choose_algorithm(page, "snakes")  # the algorithm with the most controls
    await no_horizontal_overflow(page)

    video = await page.locator("#video").bounding_box()
    assert video is not None
    assert video["width"] <= PHONE["width"] and abs(video["width"] / video["height"] - 1) < 0.02

    # Each control can be scrolled to and used; a slider moved by touch-sized clicks works too.
    for selector in ["#choose-files", "#start", "#stop", "#play", "#slice", "#algorithm"]:
        locator = page.locator(selector)
        await locator.scroll_into_view_if_needed()
        assert await locator.is_visible(), selector
    await page.locator("#param-radius").scroll_into_view_if_needed()
    box = await page.locator("#param-radius").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    await page.locator("#param-radius").fill("30")
    await wait_for_applied(page, "s.params.radius === 30")


async def test_laptop_width_shows_library_stream_and_controls_side_by_side(
    open_library_page: PageFactory,
) -> None:
    page = await open_library_page()
    await start_stream(page)
    boxes: list[Any] = [
        await page.locator(selector).bounding_box()
        for selector in [".panel-library", ".panel-stream", ".panel-controls"]
    ]
    assert all(boxes)
    lefts = [b["x"] for b in boxes]
    assert lefts == sorted(lefts) and len(set(lefts)) == 3
    assert max(b["y"] for b in boxes) - min(b["y"] for b in boxes) < 2
    # The video and the readout under it fit the window without scrolling.
    readout = await page.locator("#readout").bounding_box()
    assert readout is not None and readout["y"] + 40 <= 800
    await no_horizontal_overflow(page)


async def focused(page: Page) -> dict[str, Any]:
    info: dict[str, Any] = await page.evaluate(
        """(accessibleName) => {
          const e = document.activeElement;
          const name = new Function(`return (${accessibleName})`)()(e);
          return {id: e.id, tag: e.tagName.toLowerCase(), name,
                  outline: getComputedStyle(e).outlineStyle};
        }""",
        ACCESSIBLE_NAME,
    )
    return info


async def tab_to(page: Page, element_id: str, limit: int = 120) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if (await focused(page))["id"] == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


async def test_keyboard_reaches_every_control_and_each_has_a_label(
    open_library_page: PageFactory,
) -> None:
    page = await open_library_page()
    await wait_until_ready(page)
    await page.select_option("#algorithm", "snakes")  # before a stream: builds its controls

    # Walk the page with Tab: every stop has a name and a visible focus ring.
    visited: list[dict[str, Any]] = []
    for _ in range(150):
        await page.keyboard.press("Tab")
        info = await focused(page)
        if info["tag"] == "body" or (visited and info["id"] == visited[0]["id"]):
            break
        visited.append(info)
    unnamed = [v for v in visited if not v["name"]]
    assert unnamed == []
    invisible = [v for v in visited if v["outline"] == "none"]
    assert invisible == []
    reached = {v["id"] for v in visited}
    assert "video" not in reached  # a keyboard stop only while a click on it does something
    expected = {
        "choose-files", "choose-folder", "series-0", "start", "play", "slice-prev",
        "slice-next", "slice", "image-delay", "window-preset", "window-center", "window-width",
        "algorithm", "param-x", "param-x-value", "param-radius", "param-kernel_size",
    }  # fmt: skip
    assert expected <= reached, expected - reached

    # Keyboard only: start, pause, move the snake's centre from the focused video, grow it.
    await page.locator("body").focus()
    await tab_to(page, "start")
    await page.keyboard.press("Enter")
    await wait_for_connection(page, "streaming")
    state = await wait_for_applied(page, "s.algorithm === 'snakes'")
    await tab_to(page, "play")
    await page.keyboard.press("Space")
    state = await wait_for_applied(page, "s.playing === false")
    x, radius = state["params"]["x"], state["params"]["radius"]
    await page.locator("body").focus()
    await tab_to(page, "video")
    await page.keyboard.press("ArrowRight")
    await wait_for_applied(page, f"s.params.x === {x + 1}")
    await page.keyboard.press("+")
    await wait_for_applied(page, f"s.params.radius === {radius + 1}")
    await tab_to(page, "algorithm")
    await page.keyboard.press("ArrowUp")  # watershed, listed before snakes
    await wait_for_applied(page, "s.algorithm === 'watershed'")
