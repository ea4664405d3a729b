// Playback and display controls: play/pause, the slice slider and step buttons, seconds per
// slice, and the window (the series' presets, or a free centre/width).

import { formatNumber } from "./format.js";

function windowLabel(window) {
  return `${formatNumber(window.center)} / ${formatNumber(window.width)}`;
}

/**
 * Events: "change" with a subset of the stream state: {playing}, {index}, {image_delay} or
 * {window}.
 */
export class PlaybackControls extends EventTarget {
  constructor(elements) {
    super();
    Object.assign(this, elements);
    this.count = 0;
    this.index = 0;
    this.playing = true;
    this.presets = [];
    this.sliceDragging = false;

    this.play.addEventListener("click", () => {
      this.#showPlaying(!this.playing);
      this.#emit({ playing: this.playing });
    });
    this.prev.addEventListener("click", () => this.#seek(this.index - 1));
    this.next.addEventListener("click", () => this.#seek(this.index + 1));
    this.slice.addEventListener("input", () => this.#seek(Number(this.slice.value)));
    this.slice.addEventListener("pointerdown", () => (this.sliceDragging = true));
    this.slice.addEventListener("pointerup", () => (this.sliceDragging = false));
    this.slice.addEventListener("pointercancel", () => (this.sliceDragging = false));

    this.delayRange.addEventListener("input", () => {
      this.delayNumber.value = this.delayRange.value;
      this.#emit({ image_delay: Number(this.delayRange.value) });
    });
    this.delayNumber.addEventListener("change", () => {
      const value = this.delayNumber.valueAsNumber;
      if (!Number.isFinite(value)) return;
      this.delayRange.value = value;
      this.#emit({ image_delay: value });
    });

    this.preset.addEventListener("change", () => this.#presetChosen());
    for (const input of [this.center, this.width]) {
      input.addEventListener("change", () => this.#windowTyped());
    }
  }

  #emit(changes) {
    this.dispatchEvent(new CustomEvent("change", { detail: changes }));
  }

  #seek(index) {
    if (!this.count) return;
    this.index = (index + this.count) % this.count; // the step buttons wrap, like the player
    this.#showSlice(this.index);
    this.#emit({ index: this.index });
  }

  #presetChosen() {
    const choice = this.preset.value;
    if (choice === "custom") {
      this.center.focus();
      return;
    }
    const window = choice === "default" ? null : this.presets[Number(choice)];
    this.#showWindowInputs(window ?? this.presets[0] ?? null);
    this.#emit({ window: window ? { center: window.center, width: window.width } : null });
  }

  #windowTyped() {
    const center = this.center.valueAsNumber;
    const width = this.width.valueAsNumber;
    this.preset.value = "custom";
    // Both are needed; the server judges the values (a width below 1 is refused).
    if (Number.isFinite(center) && Number.isFinite(width))
      this.#emit({ window: { center, width } });
  }

  /** The selected series: slice count and window presets. */
  setSeries(series) {
    this.count = series?.frame_count ?? 0;
    this.presets = series?.windows ?? [];
    this.slice.max = Math.max(0, this.count - 1);
    this.#showSlice(Math.min(this.index, Math.max(0, this.count - 1)));
    this.preset.replaceChildren(
      new Option(
        this.presets.length ? "Series default (first preset)" : "Series default (automatic)",
        "default",
      ),
      ...this.presets.map(
        (w, i) => new Option(`${w.name || `Preset ${i + 1}`} (${windowLabel(w)})`, String(i)),
      ),
      new Option("Custom", "custom"),
    );
    this.#showWindowInputs(this.presets[0] ?? null);
  }

  /** Values to start a stream with. */
  initialState() {
    const state = { playing: this.playing };
    if (this.count) state.index = Math.min(this.index, this.count - 1);
    const delay = this.delayNumber.valueAsNumber;
    if (Number.isFinite(delay)) state.image_delay = delay;
    const choice = this.preset.value;
    if (choice !== "default") {
      const center = this.center.valueAsNumber;
      const width = this.width.valueAsNumber;
      if (Number.isFinite(center) && Number.isFinite(width)) state.window = { center, width };
    }
    return state;
  }

  #showPlaying(playing) {
    this.playing = playing;
    this.play.setAttribute("aria-pressed", String(playing));
    this.play.textContent = playing ? "Pause" : "Play";
  }

  #showSlice(index) {
    this.index = index;
    if (!this.sliceDragging) this.slice.value = index;
    this.sliceLabel.value = this.count ? `Slice ${index + 1} / ${this.count}` : "Slice — / —";
    this.slice.setAttribute("aria-valuetext", `slice ${index + 1} of ${this.count}`);
  }

  #showWindowInputs(window) {
    this.center.value = window ? window.center : "";
    this.width.value = window ? window.width : "";
    this.center.placeholder = this.width.placeholder = window ? "" : "auto";
  }

  /** The slice on screen (from the frame messages). */
  showFrame(frame) {
    this.count = frame.count;
    this.slice.max = Math.max(0, frame.count - 1);
    this.#showSlice(frame.index);
  }

  /** The server's applied state; `sync` moves the inputs to it too. */
  showApplied(state, { sync }) {
    if (sync) {
      this.#showPlaying(state.playing);
      if (document.activeElement !== this.delayNumber) this.delayNumber.value = state.image_delay;
      this.delayRange.value = state.image_delay;
      const editing = [this.center, this.width].includes(document.activeElement);
      if (!editing) this.#syncWindow(state.window);
    }
    this.windowApplied.textContent = state.window
      ? `Applied: ${windowLabel(state.window)}`
      : "Applied: the series' default";
  }

  #syncWindow(window) {
    if (window === null) {
      this.preset.value = "default";
      this.#showWindowInputs(this.presets[0] ?? null);
      return;
    }
    const match = this.presets.findIndex(
      (p) => p.center === window.center && p.width === window.width,
    );
    this.preset.value = match >= 0 ? String(match) : "custom";
    this.#showWindowInputs(window);
  }

  /** Show an error about `field` ("image_delay", "window"); false if there is no place for it. */
  showError(field, detail) {
    const target = { image_delay: this.delayError, window: this.windowError }[field];
    if (!target) return false;
    target.textContent = detail;
    target.hidden = !detail;
    const inputs = field === "window" ? [this.center, this.width] : [this.delayNumber];
    for (const input of inputs) input.setAttribute("aria-invalid", detail ? "true" : "false");
    return true;
  }

  clearErrors(fields = ["image_delay", "window"]) {
    for (const field of fields) this.showError(field, "");
  }

  setEnabled(enabled) {
    for (const element of [this.play, this.prev, this.next, this.slice])
      element.disabled = !enabled;
  }
}
