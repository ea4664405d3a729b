// Segmenting through the series and the saved segmentations (README "Segmentations"):
// "Segment through series" runs the 3-D propagation for the current click and slice, "Save as
// DICOM SEG" downloads the result, and the series' saved segmentations are listed with Show
// (the stream outlines each slice from that saved result) and Delete.
//
// Events: "show" (detail: the seg_uid to outline the stream from, or null).

import { ApiError, requestJson } from "./api.js";
import { authHeaders } from "./auth.js";

const numberText = (value, digits = 1) =>
  value === null || value === undefined ? "—" : Number(value).toFixed(digits);

export function volumeText(seg) {
  const slices = seg.slices ?? [];
  const range = slices.length
    ? `slices ${slices[0].index}–${slices.at(-1).index} (${slices.length})`
    : "no slices measured";
  const volume = seg.volume_ml === null ? "volume unknown" : `${numberText(seg.volume_ml)} mL`;
  return `${seg.label}: ${volume}, ${range}`;
}

export class SegmentationsPanel extends EventTarget {
  constructor({ run, save, label, progress, result, error, list, heading, status }) {
    super();
    Object.assign(this, { run, save, label, progress, result, error, list, heading, status });
    this.series = null; // the selected series
    this.latest = null; // the segmentation just made
    this.shown = null; // seg_uid the stream outlines from
    this.busy = false;
    this.canRun = false;
    this.save.addEventListener("click", () => this.latest && this.download(this.latest));
  }

  /** Whether a click algorithm with a seed is chosen (the button's state machine). */
  setRunnable(runnable) {
    this.canRun = runnable;
    this.#updateButtons();
  }

  #updateButtons() {
    this.run.disabled = this.busy || !this.canRun || !this.series;
    this.save.disabled = this.busy || !this.latest;
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  async setSeries(series) {
    if (series?.series_uid !== this.series?.series_uid) {
      this.latest = null;
      this.result.textContent = "";
      this.shown = null;
    }
    this.series = series;
    this.heading.textContent = series ? "Saved segmentations of this series" : "";
    this.#updateButtons();
    await this.refresh();
  }

  async refresh() {
    if (!this.series) {
      this.list.replaceChildren();
      return;
    }
    const uid = this.series.series_uid;
    try {
      const body = await requestJson(`images/${encodeURIComponent(uid)}/segmentations`);
      if (this.series?.series_uid !== uid) return; // another series was picked meanwhile
      this.render(body.segmentations);
    } catch (error) {
      this.status.textContent = `The segmentations could not be listed: ${error.message}`;
    }
  }

  render(segmentations) {
    this.list.replaceChildren(...segmentations.map((seg) => this.#item(seg)));
    this.status.textContent = segmentations.length ? "" : "None saved yet.";
    if (this.shown && !segmentations.some((s) => s.seg_uid === this.shown)) this.#show(null);
  }

  #item(seg) {
    const item = document.createElement("li");
    item.className = "segmentation";
    item.dataset.segUid = seg.seg_uid;
    const text = document.createElement("span");
    text.className = "segmentation-text";
    text.textContent = volumeText(seg) + (seg.origin === "uploaded" ? " (uploaded)" : "");
    const show = document.createElement("button");
    show.type = "button";
    show.className = "small";
    show.textContent = "Show";
    show.setAttribute("aria-pressed", String(this.shown === seg.seg_uid));
    show.setAttribute("aria-label", `Outline the stream from ${seg.label}`);
    show.addEventListener("click", () =>
      this.#show(this.shown === seg.seg_uid ? null : seg.seg_uid),
    );
    const download = document.createElement("button");
    download.type = "button";
    download.className = "small";
    download.textContent = "DICOM";
    download.setAttribute("aria-label", `Download ${seg.label} as DICOM SEG`);
    download.addEventListener("click", () => this.download(seg));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "small danger";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete segmentation ${seg.label}`);
    remove.addEventListener("click", () => this.remove(seg));
    item.append(text, show, download, remove);
    return item;
  }

  #show(segUid) {
    this.shown = segUid;
    for (const button of this.list.querySelectorAll("li button[aria-pressed]")) {
      const uid = button.closest("li").dataset.segUid;
      button.setAttribute("aria-pressed", String(uid === segUid));
    }
    this.dispatchEvent(new CustomEvent("show", { detail: segUid }));
  }

  /** POST the propagation for `algorithm` + `params` from slice `index`. */
  async segment({ algorithm, params, index }) {
    if (!this.series || this.busy) return;
    this.busy = true;
    this.#updateButtons();
    this.showError("");
    this.progress.hidden = false;
    this.progress.removeAttribute("value"); // indeterminate: one request does all the work
    const started = performance.now();
    this.result.textContent = `Segmenting through the series from slice ${index}…`;
    const body = { algorithm, params, index, propagate: true };
    const label = this.label.value.trim();
    if (label) body.label = label;
    try {
      const seg = await requestJson(
        `images/${encodeURIComponent(this.series.series_uid)}/segmentations`,
        {
          method: "POST",
          body: JSON.stringify(body),
          contentType: "application/json",
        },
      );
      this.latest = seg;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      this.result.textContent = `${volumeText(seg)} — in ${seconds} s`;
      this.result.dataset.segUid = seg.seg_uid;
      this.result.dataset.volumeMl = seg.volume_ml ?? "";
      this.result.dataset.slices = seg.slices.length;
      await this.refresh();
    } catch (error) {
      this.result.textContent = "";
      this.showError(error instanceof ApiError ? error.message : `Failed: ${error.message}`);
    } finally {
      this.busy = false;
      this.progress.hidden = true;
      this.#updateButtons();
    }
  }

  /** Download a SEG file (fetched, so it carries the token when there is one). */
  async download(seg) {
    try {
      const response = await fetch(seg.url, { headers: authHeaders() });
      if (!response.ok) throw new ApiError(response.status, await response.json());
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = `${seg.label.replace(/[^A-Za-z0-9_-]+/g, "_")}-${seg.seg_uid}.dcm`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (error) {
      this.showError(`The file could not be downloaded: ${error.message}`);
    }
  }

  async remove(seg) {
    if (!window.confirm(`Delete the segmentation “${seg.label}”? This cannot be undone.`)) return;
    try {
      await requestJson(
        `images/${encodeURIComponent(seg.series_uid)}/segmentations/${encodeURIComponent(seg.seg_uid)}`,
        { method: "DELETE" },
      );
    } catch (error) {
      this.showError(`The segmentation could not be deleted: ${error.message}`);
      return;
    }
    if (this.latest?.seg_uid === seg.seg_uid) this.latest = null;
    this.#updateButtons();
    await this.refresh();
  }
}
