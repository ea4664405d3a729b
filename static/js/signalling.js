// The signalling WebSocket (docs/protocol.md, "WebSocket messages"): one JSON object per text
// frame, each with a "type". The server greets with `hello`, which carries the algorithms' schemas.

import { token } from "./auth.js";

/** ws(s)://…/ws next to the page, whatever path prefix the page is served under. */
export function websocketUrl(path = "ws") {
  const url = new URL(path, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/**
 * Events: "message" (detail: the parsed message) for everything after `hello`, and "close"
 * (detail: {code, reason}) when the socket goes away.
 */
export class Signalling extends EventTarget {
  constructor(url = websocketUrl()) {
    super();
    this.url = url;
    this.socket = null;
    this.hello = null;
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Open the socket (if it is not open) and resolve with the server's `hello`. */
  open() {
    if (this.isOpen && this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      this.hello = null;
      // With a token, authenticate first (docs/protocol.md, "Authentication"): in a message,
      // not the URL, so it never shows up in logs along the way.
      socket.addEventListener("open", () => {
        if (token()) socket.send(JSON.stringify({ type: "auth", token: token() }));
      });
      socket.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return; // the server only sends JSON; ignore anything else rather than throw
        }
        if (message.type === "authenticated") return;
        if (message.type === "hello" && !this.hello) {
          this.hello = message;
          resolve(message);
          return;
        }
        this.dispatchEvent(new CustomEvent("message", { detail: message }));
      });
      socket.addEventListener("close", (event) => {
        if (this.socket !== socket) return;
        this.socket = null;
        if (!this.hello) reject(new Error("The server closed the connection before greeting."));
        this.dispatchEvent(
          new CustomEvent("close", { detail: { code: event.code, reason: event.reason } }),
        );
      });
      // An "error" is always followed by "close", which settles the promise.
    });
  }

  send(message) {
    if (!this.isOpen) throw new Error("The signalling connection is closed.");
    this.socket.send(JSON.stringify(message));
  }

  close() {
    this.socket?.close(1000, "client closed");
  }
}
