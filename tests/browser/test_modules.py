"""The client's pure modules, imported into the real browser and exercised on edge cases that a
stream on loopback rarely reaches: RTP timestamp wrap-around, a first frame that is not the
stream's first, messages arriving after their frame, update merging and holding."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from tests.browser.client_page import page_url
from tests.browser.conftest import PageFactory, ServerFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py


@pytest_asyncio.fixture(loop_scope="session")
async def page(make_server: ServerFactory, open_page: PageFactory) -> Page:
    return await open_page(page_url(await make_server()))


async def run(page: Page, module: str, body: str) -> Any:
    """Evaluate `body` (an async function body) with the module's exports as `m`."""
    return await page.evaluate(
        f"async () => {{ const m = await import('./static/js/{module}'); {body} }}"
    )


async def test_frame_pairing_matches_by_pts_across_the_rtp_wrap(page: Page) -> None:
    result = await run(
        page,
        "frames.js",
        """
        const pairing = new m.FramePairing();
        const origin = 2 ** 32 - 4000;  // the RTP clock wraps between the first two frames
        for (const pts of [0, 3000, 6000]) pairing.add({ pts, seq: pts });
        return [
          pairing.present(origin)?.seq,
          pairing.present((origin + 3001) % 2 ** 32)?.seq,  // ±2 ticks of rounding
          pairing.present((origin + 6000) % 2 ** 32)?.seq,
          pairing.present((origin + 7000) % 2 ** 32),  // no message for this one (yet)
        ];
        """,
    )
    assert result == [0, 3000, 6000, None]


async def test_a_message_arriving_after_its_frame_is_shown_then(page: Page) -> None:
    result = await run(
        page,
        "frames.js",
        """
        const pairing = new m.FramePairing();
        pairing.add({ pts: 0, seq: 1 });
        const first = pairing.present(500)?.seq;
        const early = pairing.present(500 + 9000);  // presented before its message came
        const late = pairing.add({ pts: 9000, seq: 2 })?.seq;
        const unrelated = pairing.add({ pts: 12000, seq: 3 });
        return [first, early, late, unrelated];
        """,
    )
    assert result == [1, None, 2, None]


async def test_pairing_when_the_first_frame_shown_was_not_the_first_sent(page: Page) -> None:
    result = await run(
        page,
        "frames.js",
        """
        // Irregular spacing, as a real stream has (updates, refreshes, slices).
        const pts = [0, 3000, 9000, 18000, 20000, 29000, 44000, 47000, 60000, 69000];
        const messages = pts.map((p, i) => ({ pts: p, seq: i }));
        const shown = (pairing, from, presentedFrames) => {
          const out = [];
          for (let i = from; i < pts.length; i += 1) {
            pairing.add(messages[i]);
            out.push(pairing.present(500000 + pts[i], presentedFrames + i - from)?.seq ?? null);
          }
          return out;
        };
        // The callback came late: two frames were on screen before it first fired.
        const late = new m.FramePairing();
        late.add(messages[0]);
        const lateShown = shown(late, 1, 2);
        // The stream's first frame was lost (its message was not): pts 0 is assumed.
        const lost = new m.FramePairing();
        lost.add(messages[0]);
        const lostShown = shown(lost, 1, 1);
        return [lateShown, lostShown];
        """,
    )
    late, lost = result
    assert late == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    # Its first guess pairs pts 3000 with pts 0's message (nothing tells them apart yet); the
    # next frames find no message, and the third miss resyncs it for good.
    assert lost == [0, None, None, 4, 5, 6, 7, 8, 9]


async def test_merged_updates_follow_the_servers_rules(page: Page) -> None:
    result = await run(
        page,
        "updates.js",
        """
        let merged = m.mergeChanges(null, { params: { x: 1 } });
        merged = m.mergeChanges(merged, { params: { y: 2 }, playing: false });
        const sameAlgorithm = structuredClone(merged);
        merged = m.mergeChanges(merged, { algorithm: "watershed" });
        const newAlgorithm = structuredClone(merged);
        merged = m.mergeChanges(merged, { params: { kernel_size: 5 } });
        return [sameAlgorithm, newAlgorithm, merged];
        """,
    )
    assert result == [
        {"params": {"x": 1, "y": 2}, "playing": False},
        {"playing": False, "algorithm": "watershed"},  # x and y were the old algorithm's
        {"playing": False, "algorithm": "watershed", "params": {"kernel_size": 5}},
    ]


async def test_update_queue_holds_until_released_then_sends_the_merge(page: Page) -> None:
    result = await run(
        page,
        "updates.js",
        """
        const sent = [];
        let secondSent;
        const second = new Promise((resolve) => (secondSent = resolve));
        const queue = new m.UpdateQueue((changes) => {
          sent.push(changes);
          if (sent.length === 2) secondSent();
        });
        queue.push({ params: { radius: 10 } });
        queue.push({ params: { radius: 20 } });
        const whileHeld = sent.length;
        queue.release();
        queue.push({ index: 3 });  // within the interval: waits for the trailing send
        const immediately = sent.length;
        await second;
        return [whileHeld, immediately, sent];
        """,
    )
    assert result == [0, 1, [{"params": {"radius": 20}}, {"index": 3}]]


async def test_stats_are_grouped_with_units(page: Page) -> None:
    rows = await run(
        page,
        "format.js",
        """
        return m.statRows({ area_px: 5012, area_mm2: 2455.93, perimeter_px: 250.5,
                            perimeter_mm: null, regions: 18, new_thing: 0.25 });
        """,
    )
    assert rows == [
        ["Area", "5,012 px² · 2,455.9 mm²"],
        ["Perimeter", "250.5 px"],
        ["Regions", "18"],
        ["New thing", "0.25"],
    ]
