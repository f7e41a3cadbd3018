// The dashboard's single page: log in with a token, then one WebSocket feeds every page, which
// redraws from the rows held (at most once per frame of the screen), with no page refresh.
import "./style.css";
import { ApiError, api } from "./api.js";
import { Live } from "./live.js";
import { AlarmPage } from "./pages/alarm.js";
import { FlowPage } from "./pages/flow.js";
import { HealthPage } from "./pages/health.js";
import { OperationsPage } from "./pages/operations.js";
import { Store } from "./store.js";

const STATES = { offline: "offline", connecting: "connecting", syncing: "loading history", live: "live",
  reconnecting: "reconnecting" };
const $ = (id) => document.getElementById(id);

const store = new Store();
let live = null;
let pages = null;
let drawing = false;

function setState(state, detail) {
  const badge = $("connection");
  badge.dataset.state = state;
  badge.querySelector("b").textContent = STATES[state];
  badge.title = detail || `connection to the server: ${STATES[state]}`;
}

function current() {
  const name = location.hash.slice(1);
  return pages && pages[name] ? name : "alarm";
}

function draw() {
  drawing = false;
  if (pages) pages[current()].render();
}

function changed() {
  if (!drawing) {
    drawing = true;
    requestAnimationFrame(draw);
  }
}

function route() {
  if (!pages) return;
  const name = current();
  for (const page of Object.keys(pages)) $(`page-${page}`).hidden = page !== name;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
  pages.operations.poll(name === "operations");
  if (name === "health") pages.health.refresh();
  draw();
}

function showLogin(error) {
  $("login").hidden = false;
  $("nav").hidden = $("who").hidden = $("logout").hidden = true;
  for (const page of document.querySelectorAll(".page")) page.hidden = true;
  $("login-error").hidden = !error;
  $("login-error").textContent = error || "";
}

/** Drop everything the page holds: nothing of an ended session stays on screen. */
function endSession(error) {
  if (live) live.stop();
  if (pages) pages.operations.poll(false);
  live = null;
  pages = null;
  store.clear();
  for (const body of document.querySelectorAll("table.data tbody")) body.replaceChildren();
  showLogin(error);
}

async function sessionHolds() {
  try {
    await api("/api/v1/me");
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      endSession("Your session has ended (token revoked or expired): log in again.");
      return false;
    }
    return true; // the server is away (restarting): keep trying
  }
}

async function startSession(me) {
  store.setTables((await api("/api/v1/tables")).tables);
  $("login").hidden = $("login-error").hidden = true;
  $("nav").hidden = $("who").hidden = $("logout").hidden = false;
  $("who").textContent = me.operator ? "operator" : me.tenant;
  pages = { alarm: new AlarmPage(store), flow: new FlowPage(store), health: new HealthPage(store, me),
    operations: new OperationsPage(store) };
  live = new Live(store, { onState: setState, onChange: changed, sessionHolds });
  live.start();
  route();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  try {
    await startSession(await api("/api/v1/login", { token }));
  } catch (err) {
    endSession(err instanceof ApiError && err.status === 401 ? "Invalid token: check it, or ask for a new one."
      : `Could not log in: ${err.message}`);
  }
});

$("logout").addEventListener("click", async () => {
  await api("/api/v1/logout", {}).catch(() => null);
  endSession();
});

window.addEventListener("hashchange", route);

// For people and tests alike: what the page holds, read-only.
window.dashboard = {
  state: () => $("connection").dataset.state,
  rows: (table) => store.list(table),
  frames: () => (live ? live.frames : 0),
  connects: () => (live ? live.connects : 0),
};

api("/api/v1/me").then(startSession, (err) =>
  showLogin(err instanceof ApiError && err.status === 401 ? "" : `The server did not answer: ${err.message}`));
