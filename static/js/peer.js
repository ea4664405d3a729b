// The WebRTC peer: one receive-only video transceiver and the "control" data channel, both
// created before the offer so the offer negotiates them (docs/protocol.md, "Session flow").

export const CONTROL_LABEL = "control";

/**
 * Events: "track" (detail: MediaStream), "candidate" (detail: candidate JSON, or null at the
 * end of gathering), "connectionstate" (detail: RTCPeerConnection.connectionState),
 * "control-open", "control-message" (detail: the parsed message).
 */
export class Peer extends EventTarget {
  constructor() {
    super();
    // No STUN/TURN: the server gathers host candidates and needs nothing else to reach us.
    this.pc = new RTCPeerConnection({ iceServers: [] });
    const { receiver } = this.pc.addTransceiver("video", { direction: "recvonly" });
    // Show each frame as soon as it is decoded: the server paces the stream itself, and a
    // click should not wait for the browser's own playout delay.
    if ("jitterBufferTarget" in receiver) receiver.jitterBufferTarget = 0;
    else receiver.playoutDelayHint = 0;
    this.control = this.pc.createDataChannel(CONTROL_LABEL);

    this.pc.addEventListener("track", (event) => {
      const stream = event.streams[0] ?? new MediaStream([event.track]);
      this.dispatchEvent(new CustomEvent("track", { detail: stream }));
    });
    this.pc.addEventListener("icecandidate", (event) => {
      // Chromium also reports an empty candidate per section; only `null` ends gathering,
      // and the server accepts a single end-of-candidates.
      if (event.candidate && !event.candidate.candidate) return;
      this.dispatchEvent(
        new CustomEvent("candidate", { detail: event.candidate?.toJSON() ?? null }),
      );
    });
    this.pc.addEventListener("connectionstatechange", () => {
      this.dispatchEvent(new CustomEvent("connectionstate", { detail: this.pc.connectionState }));
    });
    this.control.addEventListener("open", () => this.dispatchEvent(new Event("control-open")));
    this.control.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatchEvent(new CustomEvent("control-message", { detail: message }));
    });
  }

  get controlOpen() {
    return this.control.readyState === "open";
  }

  /** Create the offer; candidates follow as "candidate" events (trickle). */
  async createOffer() {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    return this.pc.localDescription.sdp;
  }

  async acceptAnswer(sdp) {
    await this.pc.setRemoteDescription({ type: "answer", sdp });
  }

  sendControl(message) {
    this.control.send(JSON.stringify(message));
  }

  close() {
    this.control.close();
    this.pc.close();
  }
}
