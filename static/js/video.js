// The video element: shows the stream at the series' aspect ratio, reports every presented
// frame (requestVideoFrameCallback, with its RTP timestamp) and turns clicks, drags, the wheel
// and the keyboard into image-pixel positions for algorithms with a centre and a radius.

const DRAG_THRESHOLD_PX = 3; // CSS pixels a pointer must move before a press becomes a drag
const WHEEL_FACTOR = 1.1;

/**
 * Events: "present" (detail: the frame metadata: rtpTimestamp, presentedFrames, …),
 * "place" (detail: {x, y}) and "radius" (detail: {radius}), in image pixels.
 */
export class VideoView extends EventTarget {
  constructor({ frame, video, ring, placeholder, hint }) {
    super();
    Object.assign(this, { frame, video, ring, placeholder, hint });
    this.image = { rows: 1, columns: 1 };
    this.placement = { enabled: false, hasRadius: false, x: 0, y: 0, radius: 1, maxRadius: 1 };
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
      this.dispatchEvent(new CustomEvent("present", { detail: metadata }));
      this.callbackHandle = this.video.requestVideoFrameCallback(onFrame);
    };
    this.callbackHandle = this.video.requestVideoFrameCallback(onFrame);
  }

  /** Centre and radius placement: on for algorithms with x/y parameters. */
  setPlacement(placement) {
    this.placement = { ...this.placement, ...placement };
    const { enabled } = this.placement;
    this.frame.classList.toggle("placing", enabled);
    this.hint.hidden = !enabled;
    this.video.tabIndex = enabled ? 0 : -1; // a keyboard stop only when keys do something
    this.video.setAttribute(
      "aria-label",
      enabled ? "The streamed series: click to place the snake's centre" : "The streamed series",
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

  #setRadius(radius) {
    const clamped = Math.min(Math.max(Math.round(radius), 1), this.placement.maxRadius);
    if (clamped === this.placement.radius) return;
    this.placement.radius = clamped;
    this.dispatchEvent(new CustomEvent("radius", { detail: { radius: clamped } }));
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
    if (!drag || drag.pointerId !== event.pointerId || !this.placement.hasRadius) return;
    const distance = Math.hypot(event.clientX - drag.clientX, event.clientY - drag.clientY);
    if (!drag.dragging && distance < DRAG_THRESHOLD_PX) return;
    drag.dragging = true;
    this.#setRadius(distance / this.#contentBox().scale);
    this.#showRing(this.placement.x, this.placement.y, this.placement.radius);
  }

  #pointerUp(event) {
    if (!this.drag || this.drag.pointerId !== event.pointerId) return;
    this.drag = null;
    this.ring.hidden = true;
  }

  #wheel(event) {
    if (!this.placement.enabled || !this.placement.hasRadius) return;
    event.preventDefault();
    const { radius } = this.placement;
    const grown =
      event.deltaY < 0
        ? Math.max(radius * WHEEL_FACTOR, radius + 1)
        : Math.min(radius / WHEEL_FACTOR, radius - 1);
    this.#setRadius(grown);
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
    } else if (this.placement.hasRadius && ["+", "=", "-"].includes(event.key)) {
      this.#setRadius(this.placement.radius + (event.key === "-" ? -step : step));
    } else {
      return;
    }
    event.preventDefault();
  }
}
