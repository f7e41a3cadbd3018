// The one WebSocket to the server (PROTOCOL.md "/api/v1/stream"): resume from the newest window held,
// take history then live frames, and reconnect with a growing pause when the connection drops
// (a server restart, a slow-consumer close), so the page never needs a refresh.

// No ping of its own: the server's WebSocket layer pings at the protocol level, and the server rechecks a
// session only while its connection is quiet (dashboard/stream.py), so a page pinging every 20 s would
// keep a revoked session's connection open.
const MAX_PAUSE_MS = 5000;

export class Live {
  /**
   * @param {import("./store.js").Store} store
   * @param {{onState: (state: string, detail?: string) => void, onChange: () => void,
   *          sessionHolds: () => Promise<boolean>}} hooks  sessionHolds: may the page reconnect?
   */
  constructor(store, hooks) {
    this.store = store;
    this.hooks = hooks;
    this.socket = null;
    this.pause = 250;
    this.timer = null;
    this.stopped = true;
    this.frames = 0;
    this.connects = 0;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "logged out");
    this.socket = null;
    this.hooks.onState("offline");
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream`);
    this.socket = socket;
    this.hooks.onState(this.connects ? "reconnecting" : "connecting");
    socket.onopen = () => {
      this.connects += 1;
      this.hooks.onState("syncing");
      // batch: one frame per read of live events (a checkpoint's windows) instead of one per window
      socket.send(JSON.stringify({ type: "resume", after: this.store.newest(),
        committed_after: this.store.committedAfter(), history: true, batch: true }));
    };
    socket.onmessage = (event) => {
      this.frames += 1;
      const frame = JSON.parse(event.data);
      let changed = false;
      for (const one of frame.type === "batch" ? frame.frames : [frame]) {
        if (one.type === "synced") {
          this.pause = 250;
          this.hooks.onState("live");
        } else if (this.store.apply(one)) {
          changed = true;
        }
      }
      if (changed) this.hooks.onChange();
    };
    socket.onclose = async (event) => {
      if (this.stopped || socket !== this.socket) return;
      // A refused handshake, a session closed by the server (revoked token, logout) and a dropped
      // connection look alike to a page: ask the server whether the session still holds first.
      if (!(await this.hooks.sessionHolds())) return;
      const why = event.reason ? `${event.code} ${event.reason}` : `${event.code}`;
      this.hooks.onState("reconnecting", `connection closed (${why}); retrying in ${(this.pause / 1000).toFixed(1)} s`);
      this.timer = setTimeout(() => this.connect(), this.pause);
      this.pause = Math.min(this.pause * 2, MAX_PAUSE_MS);
    };
  }
}
