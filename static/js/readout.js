// What the frame on screen shows, from its `frame` message: slice, stage, the algorithm's
// numbers and the time the server spent segmenting it. The message's seq, pts and index are
// also kept as data-* attributes, so tests (and curious people) can check which state is shown.

import { formatNumber, statRows } from "./format.js";

const STAGE_TEXT = { preview: "preview", evolving: "evolving…", final: "final" };

export class Readout {
  constructor({ root, slice, stage, time, stats }) {
    Object.assign(this, { root, slice, stage, time, stats });
  }

  clear() {
    for (const element of [this.slice, this.stage, this.time, this.stats])
      element.textContent = "—";
    for (const key of ["seq", "pts", "index", "stage", "algorithm"]) delete this.root.dataset[key];
  }

  show(frame) {
    const data = this.root.dataset;
    data.seq = frame.seq ?? "";
    data.pts = frame.pts;
    data.index = frame.index;
    data.stage = frame.stage;
    data.algorithm = frame.algorithm;

    this.slice.textContent = `${frame.index + 1} / ${frame.count}`;
    this.stage.textContent = `${frame.algorithm} · ${STAGE_TEXT[frame.stage] ?? frame.stage}`;
    const timing = frame.timing_ms ?? {};
    this.time.textContent =
      frame.algorithm === "none"
        ? "—"
        : `${formatNumber(timing.segment ?? timing.total, 1)} ms${frame.cached ? " (cached)" : ""}`;

    const rows = statRows(frame.stats);
    if (!rows.length) {
      this.stats.textContent = "—";
      return;
    }
    const list = document.createElement("ul");
    list.className = "stats";
    for (const [label, value] of rows) {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = `${label} `;
      item.append(name, value);
      list.append(item);
    }
    this.stats.replaceChildren(list);
  }
}
