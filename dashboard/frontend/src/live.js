// The one WebSocket to the server (PROTOCOL.md "/api/v1/stream"): resume from the newest window held,
// take history then live frames, and reconnect with a growing pause when the connection drops
// (a server restart, a slow-consumer close), so the page never needs a refresh.

const MAX_PAUSE_MS = 5000;
const PING_MS = 20000;

export class Live {
  /**
   * @param {import("./store.js").Store} store
   * @param {{onState: (state: string, detail?: string) => void, onChange: () => void,
   *          onRefused: () => Promise<boolean>}} hooks  onRefused: is the session still good?
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
    clearInterval(this.pinger);
    if (this.socket) this.socket.close(1000, "logged out");
    this.socket = null;
    this.hooks.onState("offline");
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream`);
    this.socket = socket;
    let opened = false;
    this.hooks.onState(this.connects ? "reconnecting" : "connecting");
    socket.onopen = () => {
      opened = true;
      this.connects += 1;
      this.hooks.onState("syncing");
      socket.send(JSON.stringify({ type: "resume", after: this.store.newest(), history: true }));
      this.pinger = setInterval(() => socket.send('{"type":"ping"}'), PING_MS);
    };
    socket.onmessage = (event) => {
      this.frames += 1;
      const frame = JSON.parse(event.data);
      if (frame.type === "synced") {
        this.pause = 250;
        this.hooks.onState("live");
      } else if (this.store.apply(frame)) {
        this.hooks.onChange();
      }
    };
    socket.onclose = async (event) => {
      clearInterval(this.pinger);
      if (this.stopped || socket !== this.socket) return;
      // A refused handshake (no or dead session) and a dropped connection look alike to a page:
      // ask the server whether the session still holds before trying again.
      if (!opened && !(await this.hooks.onRefused())) return;
      const why = event.reason ? `${event.code} ${event.reason}` : `${event.code}`;
      this.hooks.onState("reconnecting", `connection closed (${why}); retrying in ${(this.pause / 1000).toFixed(1)} s`);
      this.timer = setTimeout(() => this.connect(), this.pause);
      this.pause = Math.min(this.pause * 2, MAX_PAUSE_MS);
    };
  }
}
