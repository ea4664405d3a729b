// The series list: thumbnail, modality, description, frame count; a radio group to pick the
// series to stream (arrow keys move through it) and a delete button per series.

import { imageSource } from "./api.js";

export function framesText(series) {
  return `${series.frame_count} frame${series.frame_count === 1 ? "" : "s"}`;
}

export function seriesName(series) {
  return series.description || series.modality || "Unnamed series";
}

/**
 * Events: "select" (detail: {series, byUser}: byUser is false when the list picked it itself,
 * e.g. after the selected series was deleted) and "delete" (detail: the series).
 */
export class LibraryView extends EventTarget {
  constructor({ list, status }) {
    super();
    this.list = list;
    this.status = status;
    this.series = [];
    this.selectedUid = null;
  }

  get selected() {
    return this.series.find((s) => s.series_uid === this.selectedUid) ?? null;
  }

  showStatus(text) {
    this.status.textContent = text;
    this.status.hidden = !text;
  }

  /** Show `series`, selecting `preferUid` if given, else the selected series, else the newest. */
  render(series, preferUid = null) {
    const uids = new Set(series.map((s) => s.series_uid));
    const keep = [preferUid, this.selectedUid].find((uid) => uid && uids.has(uid));
    const previous = this.selected;
    this.series = series;
    this.selectedUid = keep ?? series.at(-1)?.series_uid ?? null;

    this.list.replaceChildren(...series.map((s, i) => this.#item(s, i)));
    this.showStatus(series.length ? "" : "No series yet: upload DICOM files to begin.");
    // Also when the selected series changed (more slices uploaded into it).
    const changed =
      this.selectedUid !== (previous?.series_uid ?? null) ||
      this.selected?.frame_count !== previous?.frame_count;
    if (changed) {
      this.dispatchEvent(
        new CustomEvent("select", { detail: { series: this.selected, byUser: false } }),
      );
    }
  }

  #item(series, i) {
    const item = document.createElement("li");
    item.className = "series";
    item.dataset.seriesUid = series.series_uid;

    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "series";
    radio.id = `series-${i}`;
    radio.value = series.series_uid;
    radio.checked = series.series_uid === this.selectedUid;
    radio.addEventListener("change", () => {
      this.selectedUid = series.series_uid;
      this.dispatchEvent(new CustomEvent("select", { detail: { series, byUser: true } }));
    });

    const label = document.createElement("label");
    label.htmlFor = radio.id;
    const thumbnail = document.createElement("img");
    imageSource(series.thumbnail)
      .then((source) => {
        if (source.startsWith("blob:")) {
          thumbnail.addEventListener("load", () => URL.revokeObjectURL(source), { once: true });
        }
        thumbnail.src = source;
      })
      .catch(() => {
        thumbnail.alt = "(no preview)"; // a frame that does not decode still lists the series
      });
    thumbnail.alt = ""; // decorative: the text next to it names the series
    thumbnail.width = thumbnail.height = 56;
    thumbnail.loading = "lazy";
    const text = document.createElement("span");
    text.className = "series-text";
    const title = document.createElement("strong");
    title.textContent = `${series.modality || "?"} · ${seriesName(series)}`;
    const facts = document.createElement("span");
    facts.textContent = `${framesText(series)} · ${series.columns}×${series.rows}`;
    text.append(title, facts);
    label.append(thumbnail, text);

    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "small danger";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete series ${seriesName(series)}`);
    remove.addEventListener("click", () =>
      this.dispatchEvent(new CustomEvent("delete", { detail: series })),
    );

    item.append(radio, label, remove);
    return item;
  }
}
