// What the frame on screen shows, from its `frame` message: slice, stage, the algorithm's
// numbers and the time the server spent segmenting it. The message's seq, pts and index are
// also kept as data-* attributes, so tests (and curious people) can check which state is shown.

import { formatNumber, measurementRows, statRows } from "./format.js";

const STAGE_TEXT = { preview: "preview", evolving: "evolving…", final: "final" };
export const NOTHING_FOUND = "Nothing found here — click inside a structure";

export class Readout {
  constructor({ root, slice, stage, time, stats, latency }) {
    Object.assign(this, { root, slice, stage, time, stats, latency });
    this.valueUnit = "";
  }

  /** The unit of the series' modality values: "HU" for CT (shown with mean ± SD). */
  setValueUnit(unit) {
    this.valueUnit = unit;
  }

  clear() {
    for (const element of [this.slice, this.stage, this.time, this.stats, this.latency])
      element.textContent = "—";
    for (const key of ["seq", "pts", "index", "stage", "algorithm", "found", "latencyMs", "latencySeq"])
      delete this.root.dataset[key];
  }

  /** Input → the first painted frame that reflects it (update `seq`), in milliseconds. */
  showLatency(ms, seq) {
    this.root.dataset.latencyMs = String(Math.round(ms));
    this.root.dataset.latencySeq = String(seq);
    this.latency.textContent = `${formatNumber(ms, 0)} ms`;
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

    const stats = frame.stats ?? {};
    if ("found" in stats) data.found = String(stats.found);
    data.seg = stats.seg ?? ""; // the outline comes from a saved segmentation
    data.tracked = "tracked" in stats ? String(stats.tracked) : "";
    if (stats.found === false) {
      // No result is better than a wrong one: no "0.001 px²" for a contour that collapsed.
      const nothing = document.createElement("p");
      nothing.className = "nothing-found";
      nothing.textContent = NOTHING_FOUND;
      nothing.title = stats.reason ?? "";
      this.stats.replaceChildren(nothing);
      return;
    }
    const rows = "found" in stats ? measurementRows(stats, this.valueUnit) : statRows(stats);
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
