// One stream at a time over the signalling socket: offer → answer → ICE → video, then updates
// with a `seq` and their `state`/`error` replies (docs/protocol.md).
//
// States, as the page shows them: idle → connecting → streaming → stopping → stopped, or
// failed (with the reason) from any of the first three.

import { Peer } from "./peer.js";

const ANSWER_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 3000;

/**
 * Events: "statechange" (detail: {state, reason}), "answered", "track" (detail: MediaStream),
 * "applied" (detail: {seq, state, changes}), "rejected" (detail: {seq, error, detail, changes}),
 * "frame" (detail: the frame message), "notice" (detail: an error message that answers no
 * update of ours, e.g. a slice that could not be decoded), "shared" (detail: the `shared`
 * message), "unshared", "viewers" (detail: {count}).
 *
 * A viewer of a shared stream (`start(null, {viewToken})`) joins it first and never sends
 * updates; the presenter's `state` messages arrive as "applied" with empty `changes`.
 */
export class StreamSession extends EventTarget {
  constructor(signalling) {
    super();
    this.signalling = signalling;
    this.peer = null;
    this.state = "idle";
    this.reason = "";
    this.seq = 0;
    this.inflight = new Map(); // seq → the changes sent with it
    this.generation = 0; // bumped by start/stop so stale async steps give up
    this.answered = false;
    this.offered = false;
    this.candidates = []; // gathered before the answer; sent once the server has a session
    this.answerWaiter = null;
    this.stopWaiter = null;
    this.viewing = false;

    signalling.addEventListener("message", (event) => this.#onMessage(event.detail));
    signalling.addEventListener("close", () => {
      this.stopWaiter?.("stopped; the connection to the server closed");
      if (this.isActive) this.#fail("The connection to the server was lost.");
    });
  }

  /** Connecting or streaming: a stream exists or is being set up. */
  get isActive() {
    return this.state === "connecting" || this.state === "streaming";
  }

  /**
   * Start a stream; `initialState` is any subset of the stream state (sent with the offer).
   * With `viewToken`, watch that shared stream instead (read-only).
   */
  async start(initialState, { viewToken = null } = {}) {
    const generation = ++this.generation;
    this.#reset();
    this.viewing = Boolean(viewToken);
    this.#setState("connecting", "Connecting to the server…");
    try {
      await this.signalling.open();
      if (generation !== this.generation) return;
      if (viewToken) {
        const joined = this.#waitForAnswer();
        this.signalling.send({ type: "join", view_token: viewToken });
        await joined;
        if (generation !== this.generation) return;
      }
      const peer = this.#createPeer();
      const sdp = await peer.createOffer();
      if (generation !== this.generation) return;
      const answer = this.#waitForAnswer();
      this.signalling.send({ type: "offer", sdp, ...(initialState && { state: initialState }) });
      this.offered = true;
      const answerSdp = await answer;
      if (generation !== this.generation) return;
      await peer.acceptAnswer(answerSdp);
      if (generation !== this.generation) return;
      this.answered = true;
      for (const candidate of this.candidates.splice(0)) this.#sendCandidate(candidate);
      this.#setState("connecting", "Connecting the video…");
      this.dispatchEvent(new Event("answered"));
      // The answer does not carry the stream state: ask for it with an empty update. (A viewer
      // is sent the presenter's state after the answer.)
      if (!this.viewing) this.update({});
    } catch (error) {
      if (generation === this.generation) this.#fail(error.message);
    }
  }

  /** Stop the stream; resolves when the server confirms (or after a short timeout). */
  async stop() {
    if (!this.isActive) return;
    ++this.generation;
    this.answerWaiter?.reject(new Error("stopped"));
    this.#setState("stopping", "Stopping…");
    let reason = "stopped by the client";
    if (this.offered && this.signalling.isOpen) {
      // Tell the server first: closing our peer first would make it see "connection closed".
      const stopped = new Promise((resolve) => {
        this.stopWaiter = resolve;
        setTimeout(resolve, STOP_TIMEOUT_MS, reason);
      });
      this.signalling.send({ type: "stop" });
      reason = await stopped;
      this.stopWaiter = null;
    }
    this.#closePeer();
    if (this.state === "stopping") this.#setState("stopped", reason);
  }

  /** Share this stream: the server answers with a "shared" event carrying the link. */
  share() {
    this.signalling.send({ type: "share" });
  }

  unshare() {
    this.signalling.send({ type: "unshare" });
  }

  /** Send an update (any subset of the state); returns its seq. */
  update(changes) {
    const seq = ++this.seq;
    const message = { type: "update", seq, ...changes };
    this.inflight.set(seq, changes);
    // The data channel once it is open; before that the socket takes the same message.
    if (this.peer?.controlOpen) this.peer.sendControl(message);
    else this.signalling.send(message);
    return seq;
  }

  // -- internals -------------------------------------------------------------------------

  #reset() {
    this.#closePeer();
    this.inflight.clear();
    this.answered = false;
    this.offered = false;
    this.candidates = [];
  }

  #createPeer() {
    const peer = new Peer();
    this.peer = peer;
    const current = () => this.peer === peer;
    peer.addEventListener("track", (event) => {
      if (current()) this.dispatchEvent(new CustomEvent("track", { detail: event.detail }));
    });
    peer.addEventListener("candidate", (event) => {
      if (!current()) return;
      if (this.answered) this.#sendCandidate(event.detail);
      else this.candidates.push(event.detail);
    });
    peer.addEventListener("connectionstate", (event) => {
      if (current()) this.#onConnectionState(event.detail);
    });
    peer.addEventListener("control-message", (event) => {
      if (current()) this.#onMessage(event.detail);
    });
    return peer;
  }

  #sendCandidate(candidate) {
    if (!this.signalling.isOpen) return;
    // `null` ends the trickle: the protocol's end-of-candidates is an empty candidate.
    this.signalling.send({ type: "candidate", ...(candidate ?? { candidate: "" }) });
  }

  #onConnectionState(connectionState) {
    if (connectionState === "connected" && this.state === "connecting" && this.answered) {
      this.#setState("streaming", "");
    } else if (connectionState === "disconnected" && this.state === "streaming") {
      this.#setState("connecting", "Connection interrupted; waiting for it to recover…");
    } else if (connectionState === "failed" && this.isActive) {
      this.#fail(
        "The video connection failed: the browser could not reach the server's media ports " +
          "(a firewall, or no network path between them).",
      );
    }
  }

  #waitForAnswer() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.answerWaiter?.reject(new Error("The server did not answer the offer in time.")),
        ANSWER_TIMEOUT_MS,
      );
      const settle = (fn) => (value) => {
        clearTimeout(timer);
        this.answerWaiter = null;
        fn(value);
      };
      this.answerWaiter = { resolve: settle(resolve), reject: settle(reject) };
    });
  }

  #onMessage(message) {
    switch (message.type) {
      case "answer":
        this.answerWaiter?.resolve(message.sdp);
        break;
      case "joined":
        this.answerWaiter?.resolve(null);
        break;
      case "state":
        if (this.viewing) {
          const detail = { seq: message.seq, state: message.state, changes: {} };
          this.dispatchEvent(new CustomEvent("applied", { detail }));
        } else {
          this.#settled("applied", message.seq, { state: message.state });
        }
        break;
      case "shared":
        this.dispatchEvent(new CustomEvent("shared", { detail: message }));
        break;
      case "unshared":
        this.dispatchEvent(new Event("unshared"));
        break;
      case "viewers":
        this.dispatchEvent(new CustomEvent("viewers", { detail: { count: message.count } }));
        break;
      case "error":
        if (message.seq != null && this.inflight.has(message.seq)) {
          this.#settled("rejected", message.seq, { error: message.error, detail: message.detail });
        } else if (message.seq == null && this.answerWaiter) {
          // Errors without a seq while the offer is pending answer the offer.
          this.answerWaiter.reject(new Error(message.detail || message.error));
        } else if (this.isActive) {
          this.dispatchEvent(new CustomEvent("notice", { detail: message }));
        }
        break;
      case "frame":
        if (this.isActive) this.dispatchEvent(new CustomEvent("frame", { detail: message }));
        break;
      case "stopped":
        this.#onStopped(message.reason);
        break;
      default:
        break; // pong, and types a newer server may add: ignored, as the protocol asks
    }
  }

  #settled(kind, seq, detail) {
    const changes = this.inflight.get(seq);
    if (changes === undefined) return; // a reply to a stream we have left
    this.inflight.delete(seq);
    this.dispatchEvent(new CustomEvent(kind, { detail: { seq, changes, ...detail } }));
  }

  #onStopped(reason) {
    if (reason === "replaced by a new offer") return; // we only replace after stopping
    if (this.stopWaiter) {
      this.stopWaiter(reason);
    } else if (this.isActive && this.answered) {
      this.#closePeer();
      if (reason === "connection failed") this.#fail("The video connection failed.");
      else this.#setState("stopped", reason);
    }
  }

  #fail(reason) {
    ++this.generation;
    this.#closePeer();
    this.answerWaiter?.reject(new Error(reason));
    // Release the server's side too; its reply ("stopped", or "no_stream" when it has already
    // dropped the stream) arrives while we are inactive and is ignored.
    if (this.offered && this.signalling.isOpen) this.signalling.send({ type: "stop" });
    this.offered = false;
    this.#setState("failed", reason);
  }

  #closePeer() {
    this.peer?.close();
    this.peer = null;
  }

  #setState(state, reason) {
    this.state = state;
    this.reason = reason;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { state, reason } }));
  }
}
