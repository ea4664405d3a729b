// Pairing the frame on screen with its `frame` message (docs/protocol.md, "frame").
//
// The server stamps each message with the frame's pts on the 90 kHz RTP clock, counted from 0 at
// the stream's first frame; the browser reports each presented frame's RTP timestamp, which
// starts at a random origin. pts = rtpTimestamp − origin (mod 2³²), ±2 ticks for rounding.

const TOLERANCE = 2;
const KEEP = 240; // messages remembered: ~8 s at the 30 fps cap
const MISSES_BEFORE_RESYNC = 3;
const MOD = 2 ** 32;

function modDistance(a, b) {
  const d = (((a - b) % MOD) + MOD) % MOD;
  return Math.min(d, MOD - d);
}

export class FramePairing {
  constructor() {
    this.reset();
  }

  reset() {
    this.messages = [];
    this.origin = null;
    this.misses = 0;
    this.waitingPts = null; // a presented frame whose message has not arrived yet
  }

  /** Remember a frame message; returns it if it belongs to the frame already on screen. */
  add(message) {
    this.messages.push(message);
    if (this.messages.length > KEEP) this.messages.splice(0, this.messages.length - KEEP);
    if (this.waitingPts !== null && modDistance(message.pts, this.waitingPts) <= TOLERANCE) {
      this.waitingPts = null;
      this.misses = 0;
      return message;
    }
    return null;
  }

  /**
   * The message for a presented frame, or null (its message has not arrived yet).
   * `presentedFrames` is the frame callback's count of frames shown so far.
   */
  present(rtpTimestamp, presentedFrames = 1) {
    if (this.origin === null) this.origin = this.#guessOrigin(rtpTimestamp, presentedFrames);
    const pts = (((rtpTimestamp - this.origin) % MOD) + MOD) % MOD;
    const found = this.#find(pts);
    if (found) {
      this.misses = 0;
      this.waitingPts = null;
      return found;
    }
    this.misses += 1;
    if (this.misses >= MISSES_BEFORE_RESYNC && this.messages.length) {
      // The guess was wrong (the first frame was lost, say): take the newest message.
      const newest = this.messages.at(-1);
      this.origin = (((rtpTimestamp - newest.pts) % MOD) + MOD) % MOD;
      this.misses = 0;
      this.waitingPts = null;
      return newest;
    }
    this.waitingPts = pts;
    return null;
  }

  /**
   * The first frame on screen is the stream's first (pts 0) when it is the first presented and
   * pts 0 was announced (or nothing was yet). Otherwise it is most likely the newest message's:
   * messages go out just before encoding, ahead of their picture but not of the next picture's.
   */
  #guessOrigin(rtpTimestamp, presentedFrames) {
    const announcedFirst = !this.messages.length || this.messages.some((m) => m.pts === 0);
    const pts = presentedFrames <= 1 && announcedFirst ? 0 : this.messages.at(-1).pts;
    return (((rtpTimestamp - pts) % MOD) + MOD) % MOD;
  }

  #find(pts) {
    for (let i = this.messages.length - 1; i >= 0; i -= 1) {
      if (modDistance(this.messages[i].pts, pts) <= TOLERANCE) return this.messages[i];
    }
    return null;
  }
}
