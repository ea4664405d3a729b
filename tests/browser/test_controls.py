"""Playback, window and delay controls, and the throttling of updates while a control moves."""

from __future__ import annotations

import time

import pytest

from tests.browser.client_page import (
    applied,
    choose_algorithm,
    readout,
    start_stream,
    wait_for_applied,
    wait_for_frame_with_seq,
)
from tests.browser.conftest import PageFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py

SLICES = 6


async def test_playback_and_window_controls_steer_the_stream(
    open_library_page: PageFactory,
) -> None:
    page = await open_library_page(n_slices=SLICES)
    await start_stream(page)

    # Pause: the button shows it, the server applies it.
    await page.click("#play")
    state = await wait_for_applied(page, "s.playing === false")
    assert await page.get_attribute("#play", "aria-pressed") == "false"
    assert await page.inner_text("#play") == "Play"

    # Step buttons and the slider seek; the frame on screen is that slice.
    index = state["index"]
    await page.click("#slice-next")
    state = await wait_for_applied(page, f"s.index === {(index + 1) % SLICES}")
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert int(shown["index"]) == (index + 1) % SLICES
    assert await page.inner_text("#slice-label") == f"Slice {(index + 1) % SLICES + 1} / {SLICES}"
    await page.click("#slice-prev")
    state = await wait_for_applied(page, f"s.index === {index}")
    await page.fill("#slice", "4")
    state = await wait_for_applied(page, "s.index === 4")
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert shown["index"] == "4"
    assert await page.inner_text("#readout-slice") == f"5 / {SLICES}"

    # Window presets come from the series; a preset, a free centre/width, back to default.
    options = await page.eval_on_selector_all(
        "#window-preset option", "options => options.map(o => o.textContent)"
    )
    assert any("LUNG" in text for text in options), options
    lung = next(i for i, text in enumerate(options) if "LUNG" in text) - 1  # after "default"
    await page.select_option("#window-preset", str(lung))
    state = await wait_for_applied(page, "s.window && s.window.center === -600")
    assert state["window"] == {"center": -600, "width": 1500}
    await page.fill("#window-center", "50")
    await page.press("#window-center", "Tab")
    await page.fill("#window-width", "350")
    await page.press("#window-width", "Tab")
    state = await wait_for_applied(page, "s.window && s.window.width === 350")
    assert state["window"] == {"center": 50, "width": 350}
    assert await page.input_value("#window-preset") == "custom"
    assert "50 / 350" in await page.inner_text("#window-applied")
    await page.select_option("#window-preset", "default")
    await wait_for_applied(page, "s.window === null")

    # Seconds per slice, then play: the slices advance on screen.
    await page.fill("#image-delay", "0.2")
    await page.press("#image-delay", "Tab")
    await wait_for_applied(page, "s.image_delay === 0.2")
    assert await page.input_value("#image-delay-range") == "0.2"
    await page.click("#play")
    await wait_for_applied(page, "s.playing === true")
    seen = {(await readout(page))["index"]}
    await page.wait_for_function(
        "(seen) => !seen.includes(document.querySelector('#readout').dataset.index)",
        arg=list(seen),
    )
    seen.add((await readout(page))["index"])
    await page.wait_for_function(
        "(seen) => !seen.includes(document.querySelector('#readout').dataset.index)",
        arg=list(seen),
    )


async def test_a_moving_slider_sends_at_most_30_updates_per_second_and_the_last_value(
    open_library_page: PageFactory,
) -> None:
    page = await open_library_page(n_slices=SLICES)
    await start_stream(page)
    await choose_algorithm(page, "watershed")
    await page.click("#play")
    before = (await wait_for_applied(page, "s.playing === false"))["_seq"]

    # A hundred value changes at once (faster than any hand): one update goes out at once,
    # the rest collapse into one trailing update carrying the last value.
    await page.evaluate(
        """() => {
          const slider = document.querySelector('#param-threshold_ratio');
          for (let i = 0; i <= 100; i += 1) {
            slider.value = (i / 100).toFixed(2);
            slider.dispatchEvent(new Event('input', { bubbles: true }));
          }
        }"""
    )
    state = await wait_for_applied(page, "s.params.threshold_ratio === 1")
    assert 1 <= state["_seq"] - before <= 2
    await wait_for_frame_with_seq(page, state["_seq"])

    # A real drag across the slider: no more than ~30 updates a second, and the value the
    # slider ends on is the one applied.
    box = await page.locator("#param-threshold_ratio").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    before = state["_seq"]
    started = time.monotonic()
    await page.mouse.move(box["x"] + box["width"] - 2, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + 2, y, steps=40)
    await page.mouse.up()
    elapsed = time.monotonic() - started
    final = float(await page.input_value("#param-threshold_ratio"))
    assert final < 0.1
    state = await wait_for_applied(page, f"s.params.threshold_ratio === {final}")
    sent = state["_seq"] - before
    assert 1 <= sent <= elapsed * 30 + 3, (sent, elapsed)
    assert (await applied(page))["_seq"] == state["_seq"]  # nothing else followed
