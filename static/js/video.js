// The video element: shows the stream at the series' aspect ratio, reports every presented
// frame (requestVideoFrameCallback, with its RTP timestamp) and turns clicks, drags, the wheel
// and the keyboard into a seed (image pixels) and the value of one "drag" parameter for click
// algorithms: the snake's radius, or region growing's tolerance.

const DRAG_THRESHOLD_PX = 3; // CSS pixels a pointer must move before a press becomes a drag
const WHEEL_FACTOR = 1.1;

/**
 * Events: "present" (detail: the frame metadata: rtpTimestamp, presentedFrames, …, and `now`,
 * the time the frame was handed to the compositor), "place" (detail: {x, y}, image pixels) and
 * "drag" (detail: {[name]: value}, the drag parameter's new value).
 *
 * The drag parameter is given by `setPlacement({drag: {name, unit, step, min, max, value}})`:
 * with unit "px" (a radius) the distance dragged is measured in image pixels; otherwise every
 * CSS pixel dragged is one `step` of the parameter (e.g. 1 HU of tolerance).
 */
export class VideoView extends EventTarget {
  constructor({ frame, video, ring, placeholder, hint }) {
    super();
    Object.assign(this, { frame, video, ring, placeholder, hint });
    this.image = { rows: 1, columns: 1 };
    this.placement = { enabled: false, drag: null, x: 0, y: 0 };
    this.presented = 0;
    this.callbackHandle = null;
    this.drag = null;

    video.addEventListener("pointerdown", (event) => this.#pointerDown(event));
    video.addEventListener("pointermove", (event) => this.#pointerMove(event));
    video.addEventListener("pointerup", (event) => this.#pointerUp(event));
    video.addEventListener("pointercancel", (event) => this.#pointerUp(event));
    // Not passive: the wheel sets the radius instead of scrolling the page while placing.
    video.addEventListener("wheel", (event) => this.#wheel(event), { passive: false });
    video.addEventListener("keydown", (event) => this.#key(event));
  }

  /** The selected series' size: the frame takes its aspect ratio before any video arrives. */
  setImageSize({ rows, columns }) {
    this.image = { rows, columns };
    this.frame.style.setProperty("--aspect", `${columns} / ${rows}`);
  }

  attach(stream) {
    this.video.srcObject = stream;
    this.placeholder.hidden = true;
    this.presented = 0;
    this.video.dataset.presentedFrames = "0";
    // Muted video may play without a user gesture; an AbortError only means srcObject changed.
    this.video.play().catch((error) => {
      if (error.name !== "AbortError") this.showMessage(`The video cannot play: ${error.message}`);
    });
    this.#watchFrames();
  }

  detach(message) {
    if (this.callbackHandle !== null) this.video.cancelVideoFrameCallback?.(this.callbackHandle);
    this.callbackHandle = null;
    this.video.srcObject = null;
    this.showMessage(message);
  }

  showMessage(message) {
    this.placeholder.textContent = message;
    this.placeholder.hidden = !message;
  }

  #watchFrames() {
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    const onFrame = (now, metadata) => {
      this.presented += 1;
      this.video.dataset.presentedFrames = String(this.presented);
      this.dispatchEvent(new CustomEvent("present", { detail: { ...metadata, now } }));
      this.callbackHandle = this.video.requestVideoFrameCallback(onFrame);
    };
    this.callbackHandle = this.video.requestVideoFrameCallback(onFrame);
  }

  /** Seed placement: on for algorithms with x/y parameters (a click seeds them). */
  setPlacement(placement) {
    this.placement = { ...this.placement, ...placement };
    const { enabled } = this.placement;
    this.frame.classList.toggle("placing", enabled);
    this.hint.hidden = !enabled;
    this.video.tabIndex = enabled ? 0 : -1; // a keyboard stop only when keys do something
    this.video.setAttribute(
      "aria-label",
      enabled ? "The streamed series: click a structure to outline it" : "The streamed series",
    );
  }

  // -- coordinates -----------------------------------------------------------------------

  /**
   * Where the picture is inside the element (object-fit: contain letterboxes it), in client
   * pixels, and the picture's size in image pixels.
   */
  #contentBox() {
    const rect = this.video.getBoundingClientRect();
    const { rows, columns } = this.image;
    // The server pads odd sizes to even ones (4:2:0 video); the padding is right and bottom.
    const sourceWidth = columns + (columns % 2);
    const sourceHeight = rows + (rows % 2);
    const aspect =
      this.video.videoWidth && this.video.videoHeight
        ? this.video.videoWidth / this.video.videoHeight
        : sourceWidth / sourceHeight;
    const width = Math.min(rect.width, rect.height * aspect);
    const height = width / aspect;
    return {
      left: rect.left + (rect.width - width) / 2,
      top: rect.top + (rect.height - height) / 2,
      width,
      height,
      scale: width / sourceWidth, // CSS pixels per image pixel
    };
  }

  /** Client (CSS) coordinates → the image pixel under them, clamped to the image. */
  toImagePixel(clientX, clientY) {
    const box = this.#contentBox();
    const clamp = (v, max) => Math.min(Math.max(v, 0), max);
    return {
      x: clamp(Math.floor((clientX - box.left) / box.scale), this.image.columns - 1),
      y: clamp(Math.floor((clientY - box.top) / box.scale), this.image.rows - 1),
    };
  }

  #showRing(x, y, radius) {
    const box = this.#contentBox();
    const frame = this.frame.getBoundingClientRect();
    const size = 2 * radius * box.scale;
    Object.assign(this.ring.style, {
      left: `${box.left - frame.left + (x + 0.5) * box.scale - size / 2}px`,
      top: `${box.top - frame.top + (y + 0.5) * box.scale - size / 2}px`,
      width: `${size}px`,
      height: `${size}px`,
    });
    this.ring.hidden = false;
  }

  // -- input -----------------------------------------------------------------------------

  #place(x, y) {
    this.placement.x = x;
    this.placement.y = y;
    this.dispatchEvent(new CustomEvent("place", { detail: { x, y } }));
  }

  #setDrag(value) {
    const drag = this.placement.drag;
    if (!drag) return;
    const stepped = Math.round(value / drag.step) * drag.step;
    const clamped = Math.min(Math.max(stepped, drag.min), drag.max);
    const rounded = Number(clamped.toFixed(6));
    if (rounded === drag.value) return;
    drag.value = rounded;
    this.dispatchEvent(new CustomEvent("drag", { detail: { [drag.name]: rounded } }));
  }

  /** The drag parameter's value for a drag of `distance` CSS pixels from the press. */
  #dragValue(distance) {
    const drag = this.placement.drag;
    return drag.unit === "px" ? distance / this.#contentBox().scale : distance * drag.step;
  }

  #pointerDown(event) {
    if (!this.placement.enabled || event.button !== 0) return;
    event.preventDefault(); // no text selection or native drag while placing
    this.video.focus({ preventScroll: true });
    this.video.setPointerCapture(event.pointerId);
    const { x, y } = this.toImagePixel(event.clientX, event.clientY);
    this.drag = {
      pointerId: event.pointerId,
      clientX: event.clientX,
      clientY: event.clientY,
      dragging: false,
    };
    this.#place(x, y);
  }

  #pointerMove(event) {
    const drag = this.drag;
    if (!drag || drag.pointerId !== event.pointerId || !this.placement.drag) return;
    const distance = Math.hypot(event.clientX - drag.clientX, event.clientY - drag.clientY);
    if (!drag.dragging && distance < DRAG_THRESHOLD_PX) return;
    drag.dragging = true;
    this.#setDrag(this.#dragValue(distance));
    if (this.placement.drag.unit === "px") {
      this.#showRing(this.placement.x, this.placement.y, this.placement.drag.value);
    }
  }

  #pointerUp(event) {
    if (!this.drag || this.drag.pointerId !== event.pointerId) return;
    this.drag = null;
    this.ring.hidden = true;
  }

  #wheel(event) {
    const drag = this.placement.drag;
    if (!this.placement.enabled || !drag) return;
    event.preventDefault();
    const { value, step } = drag;
    const grown =
      event.deltaY < 0
        ? Math.max(value * WHEEL_FACTOR, value + step)
        : Math.min(value / WHEEL_FACTOR, value - step);
    this.#setDrag(grown);
  }

  #key(event) {
    if (!this.placement.enabled) return;
    const step = event.shiftKey ? 10 : 1;
    const moves = {
      ArrowLeft: [-step, 0],
      ArrowRight: [step, 0],
      ArrowUp: [0, -step],
      ArrowDown: [0, step],
    };
    if (moves[event.key]) {
      const [dx, dy] = moves[event.key];
      const { columns, rows } = this.image;
      this.#place(
        Math.min(Math.max(this.placement.x + dx, 0), columns - 1),
        Math.min(Math.max(this.placement.y + dy, 0), rows - 1),
      );
    } else if (this.placement.drag && ["+", "=", "-"].includes(event.key)) {
      const drag = this.placement.drag;
      this.#setDrag(drag.value + (event.key === "-" ? -step : step) * drag.step);
    } else {
      return;
    }
    event.preventDefault();
  }
}
