// Throttled state updates: a slider being dragged fires dozens of input events per second, but
// the server only needs the newest value. Changes are merged into one pending update that goes
// out at most every `interval` ms; the last value is always sent (trailing edge).

/**
 * Merge `changes` into the pending update `base` the way the server applies them: `params`
 * merge, and a new `algorithm` drops parameters meant for the previous one (the server starts a
 * new algorithm from its defaults plus the params sent with it).
 */
export function mergeChanges(base, changes) {
  if (!base) return { ...changes, ...(changes.params && { params: { ...changes.params } }) };
  const merged = { ...base, ...changes };
  if ("algorithm" in changes && changes.algorithm !== base.algorithm) {
    if (changes.params) merged.params = { ...changes.params };
    else delete merged.params;
  } else if (base.params && changes.params) {
    merged.params = { ...base.params, ...changes.params };
  }
  return merged;
}

export class UpdateQueue {
  /** `send(changes)` is called with the merged changes; held until `release()`. */
  constructor(send, { interval = 1000 / 30 } = {}) {
    this.send = send;
    this.interval = interval;
    this.pending = null;
    this.timer = null;
    this.lastSent = -Infinity;
    this.held = true;
  }

  get hasPending() {
    return this.pending !== null;
  }

  push(changes) {
    this.pending = mergeChanges(this.pending, changes);
    this.#schedule();
  }

  /** Keep changes back (no stream to send them to yet). */
  hold() {
    this.held = true;
    clearTimeout(this.timer);
    this.timer = null;
  }

  release() {
    this.held = false;
    this.#schedule();
  }

  clear() {
    this.pending = null;
    clearTimeout(this.timer);
    this.timer = null;
  }

  #schedule() {
    if (this.held || !this.pending || this.timer) return;
    const wait = this.lastSent + this.interval - performance.now();
    if (wait <= 0) {
      this.#flush();
    } else {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.#flush();
      }, wait);
    }
  }

  #flush() {
    if (this.held || !this.pending) return;
    const changes = this.pending;
    this.pending = null;
    this.lastSent = performance.now();
    this.send(changes);
  }
}
