// Segmentation controls built from the server's `hello` schema (docs/protocol.md): an algorithm
// selector and one slider + number box per parameter, in the schema's order. Nothing about the
// algorithms is hard-coded except which parameters are image coordinates (clamped to the image).

import { decimalsFor } from "./format.js";

// Parameters measured in image pixels; the schema's static range (0–4095, 1–1024) is narrowed
// to the selected series. Radii may not exceed the image's larger side (docs/segmentation.md).
const IMAGE_LIMITS = {
  x: ({ columns }) => columns - 1,
  y: ({ rows }) => rows - 1,
  radius: ({ rows, columns }) => Math.max(rows, columns),
  radius_y: ({ rows, columns }) => Math.max(rows, columns),
};

function parseValue(spec, text) {
  if (text === "" || text === null) return null;
  const value = Number(text);
  if (!Number.isFinite(value)) return null;
  return spec.type === "int" ? Math.round(value) : value;
}

/** One parameter: label, slider, number box, the applied value and room for an error. */
class ParamControl {
  constructor(name, spec) {
    this.name = name;
    this.spec = spec;
    this.decimals = spec.type === "int" ? 0 : decimalsFor(spec.step);
    this.dragging = false;

    const id = `param-${name}`;
    this.root = document.createElement("div");
    this.root.className = "control";
    this.root.dataset.param = name;
    this.root.innerHTML = `
      <div class="control-head"><label></label><output class="applied-value"></output></div>
      <div class="control-inputs"><input type="range"><input type="number"></div>
      <p class="hint"></p>
      <p class="error" role="alert" hidden></p>`;
    this.label = this.root.querySelector("label");
    this.applied = this.root.querySelector("output");
    this.range = this.root.querySelector('input[type="range"]');
    this.number = this.root.querySelector('input[type="number"]');
    this.help = this.root.querySelector(".hint");
    this.error = this.root.querySelector(".error");
    // Names come from the server; set as properties, never parsed as HTML.
    this.range.id = id;
    this.number.id = `${id}-value`;
    this.help.id = `${id}-help`;
    this.error.id = `${id}-error`;
    this.label.htmlFor = id;
    this.applied.htmlFor = id;

    this.label.textContent = spec.label ?? name;
    this.help.textContent = spec.description ?? "";
    this.number.setAttribute("aria-label", `${spec.label ?? name} (value)`);
    for (const input of [this.range, this.number]) {
      input.min = spec.min;
      input.max = spec.max;
      input.step = spec.step ?? (spec.type === "int" ? 1 : "any");
      input.setAttribute("aria-describedby", `${id}-help ${id}-error`);
    }
    this.setValue(spec.default);
    // Dragging: the server's replies must not pull the thumb back under the pointer.
    this.range.addEventListener("pointerdown", () => (this.dragging = true));
    this.range.addEventListener("pointerup", () => (this.dragging = false));
    this.range.addEventListener("pointercancel", () => (this.dragging = false));
  }

  get value() {
    return parseValue(this.spec, this.range.value);
  }

  setValue(value) {
    this.range.value = value;
    this.number.value = this.format(value);
  }

  format(value) {
    return Number(value).toFixed(this.decimals);
  }

  setMax(max) {
    this.range.max = max;
    this.number.max = max;
    // The browser clamps a slider's value to its new range; the number box follows it.
    this.number.value = this.format(this.range.value);
  }

  /** Whether the person is editing this control right now (do not overwrite it). */
  get busy() {
    return this.dragging || document.activeElement === this.number;
  }

  showApplied(value, { sync }) {
    this.root.dataset.applied = String(value);
    this.applied.value = `applied ${this.format(value)}`;
    if (sync && !this.busy) this.setValue(value);
    this.root.classList.toggle("pending", this.value !== value);
  }

  showError(detail) {
    this.error.textContent = detail;
    this.error.hidden = !detail;
    this.number.setAttribute("aria-invalid", detail ? "true" : "false");
  }
}

/**
 * Events: "change" with detail `{algorithm}` (a new algorithm was picked) or `{params}` (one
 * parameter changed).
 */
export class ParamsPanel extends EventTarget {
  constructor({ select, description, error, container }) {
    super();
    this.select = select;
    this.description = description;
    this.error = error;
    this.container = container;
    this.schemas = {};
    this.controls = new Map();
    this.image = null; // {rows, columns} of the selected series
    this.touched = new Set(); // parameters the person changed since the algorithm was picked

    select.addEventListener("change", () => {
      this.showAlgorithm(select.value);
      this.dispatchEvent(new CustomEvent("change", { detail: { algorithm: select.value } }));
    });
  }

  /** The `algorithms` of the server's hello. */
  setSchemas(algorithms) {
    this.schemas = algorithms;
    this.select.replaceChildren(
      ...Object.entries(algorithms).map(([name, schema]) => new Option(schema.label ?? name, name)),
    );
    this.select.disabled = false;
    this.showAlgorithm(this.select.value);
  }

  get algorithm() {
    return this.select.value;
  }

  hasParam(name) {
    return this.controls.has(name);
  }

  /** The schema of parameter `name` of the current algorithm (null if it has none). */
  spec(name) {
    return this.controls.get(name)?.spec ?? null;
  }

  /** The largest value parameter `name` takes for the selected series. */
  max(name) {
    const control = this.controls.get(name);
    return control ? Number(control.range.max) : null;
  }

  /** Rebuild the parameter controls for `name`, at the schema's defaults. */
  showAlgorithm(name) {
    const schema = this.schemas[name];
    if (!schema) return;
    this.select.value = name;
    this.description.textContent = schema.description ?? "";
    this.touched.clear();
    this.controls = new Map(
      Object.entries(schema.params ?? {}).map(([param, spec]) => [
        param,
        new ParamControl(param, spec),
      ]),
    );
    for (const control of this.controls.values()) {
      control.range.addEventListener("input", () => this.#changed(control, control.value));
      control.number.addEventListener("change", () => {
        const value = parseValue(control.spec, control.number.value);
        if (value !== null) this.#changed(control, value);
      });
    }
    this.container.replaceChildren(...[...this.controls.values()].map((c) => c.root));
    if (this.image) this.setImageSize(this.image);
    this.dispatchEvent(new Event("rebuilt"));
  }

  #changed(control, value) {
    // The number box may hold a value the slider cannot (the server judges it).
    if (document.activeElement !== control.number) control.number.value = control.format(value);
    else control.range.value = value;
    this.touched.add(control.name);
    this.dispatchEvent(
      new CustomEvent("change", { detail: { params: { [control.name]: value } } }),
    );
  }

  /** Narrow image-coordinate parameters to the selected series' size. */
  setImageSize(image) {
    this.image = image;
    for (const [name, limit] of Object.entries(IMAGE_LIMITS)) {
      const control = this.controls.get(name);
      if (control) control.setMax(Math.min(control.spec.max, limit(image)));
    }
  }

  /** Current values, all or only those the person changed. */
  values({ touchedOnly = false } = {}) {
    const values = {};
    for (const [name, control] of this.controls) {
      if (!touchedOnly || this.touched.has(name)) values[name] = control.value;
    }
    return values;
  }

  /** Set parameters from elsewhere (a click on the video), as if the person had moved them. */
  setParams(params) {
    for (const [name, value] of Object.entries(params)) {
      const control = this.controls.get(name);
      if (!control) continue;
      control.setValue(value);
      this.touched.add(name);
    }
    this.dispatchEvent(new CustomEvent("change", { detail: { params } }));
  }

  /** The server's applied algorithm and parameters; `sync` moves the inputs to them too. */
  showApplied(algorithm, params, { sync }) {
    if (algorithm !== this.select.value && sync) this.showAlgorithm(algorithm);
    if (algorithm !== this.select.value) return;
    this.select.dataset.applied = algorithm;
    for (const [name, value] of Object.entries(params ?? {})) {
      this.controls.get(name)?.showApplied(value, { sync });
    }
  }

  /** Show `detail` next to the controls among `names` it is about (all of them if none). */
  showError(names, detail) {
    if (!names.length) {
      this.error.textContent = detail;
      this.error.hidden = false;
      return;
    }
    const mentioned = names.filter((name) => new RegExp(`\\b${name}\\b`).test(detail));
    for (const name of mentioned.length ? mentioned : names)
      this.controls.get(name)?.showError(detail);
  }

  clearErrors(names = null) {
    if (names === null) {
      this.error.hidden = true;
      this.error.textContent = "";
    }
    for (const [name, control] of this.controls) {
      if (names === null || names.includes(name)) control.showError("");
    }
  }
}
