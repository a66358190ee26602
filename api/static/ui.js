// Small shared pieces of the pages: formatting, status badges, announcements and polling.

import { esc, fmtNumber } from "./charts.js";

export { esc, fmtNumber };

export const ACTIVE_EXPERIMENT = new Set(["queued", "running", "canceling"]);
export const POLL_MS = 2000;

export const pct = (value) => (Number.isFinite(value) ? `${(value * 100).toFixed(2)}%` : "–");
export const ms = (value) => (Number.isFinite(value) ? `${value.toFixed(2)} ms` : "–");
export const seconds = (value) => (Number.isFinite(value) ? (value < 120 ? `${value.toFixed(1)} s` : `${(value / 60).toFixed(1)} min`) : "–");
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

export const badge = (status, testid = "status") =>
  `<span class="badge s-${esc(status)}" data-testid="${esc(testid)}" data-status="${esc(status)}">${esc(status)}</span>`;

export function announce(message) {
  const live = document.getElementById("live");
  live.textContent = "";
  // A fresh text node after a tick makes screen readers repeat identical messages too.
  setTimeout(() => { live.textContent = message; }, 30);
}

// Runs `step` now and every POLL_MS after it finishes, while the page is current and `step` returns true.
// A hidden tab skips its turns; a transient failure (rate limit, restart, network) is shown and retried.
export function poll(page, step) {
  let timer = null;
  const again = () => { if (page.current()) timer = setTimeout(run, POLL_MS); };
  const run = async () => {
    if (!page.current()) return;
    if (document.hidden) { again(); return; }
    let more = false;
    try {
      more = await step();
      document.getElementById("page-error")?.remove();
    } catch (error) {
      page.fail(error);
      if (isTransient(error)) again();
      return;
    }
    if (more) again();
  };
  page.onLeave(() => clearTimeout(timer));
  return run();
}

const isTransient = (error) => error instanceof TypeError || [429, 502, 503, 504].includes(error?.status);

// Replaces a container's HTML only when its content's signature changed, so idle polls touch nothing.
const signatures = new WeakMap();

export function patch(element, signature, html) {
  if (signatures.get(element) === signature) return false;
  signatures.set(element, signature);
  element.innerHTML = typeof html === "function" ? html() : html;
  return true;
}

// A failed request for people: the problem's detail (or title), its status line, and each per-item error
// (`body.budget.max_trials`: …, `notes.png`: …) with the `body.` prefix of field names left out.
export function problemView(error, testid) {
  const problem = error.problem || {};
  const status = error.status ? `HTTP ${error.status}${problem.title ? ` · ${problem.title}` : ""}` : "";
  const items = (problem.errors || []).map((item) => {
    const where = String(item.file ?? item.field ?? "").replace(/^body\./, "");
    return `<li>${where ? `<b>${esc(where)}</b>: ` : ""}${esc(item.error ?? item.msg ?? "")}</li>`;
  }).join("");
  return `<div class="problem" role="alert"><p class="error" data-testid="${esc(testid)}">${esc(error.message)}</p>
    ${status ? `<p class="muted">${esc(status)}</p>` : ""}${items ? `<ul class="errors" data-testid="${esc(testid)}-items">${items}</ul>` : ""}</div>`;
}

// Files picked in an input matching `inputSelector`, or dropped on a .drop-zone, inside `root` (delegated, so a
// zone re-rendered later still works): `handle(files)`; a zone is marked .over while files hover it.
export function onFiles(root, inputSelector, handle) {
  const zoneOf = (event) => event.target.closest?.(".drop-zone");
  root.addEventListener("change", (event) => {
    if (!event.target.matches(inputSelector)) return;
    handle(event.target.files);
    event.target.value = ""; // choosing the same files again fires again
  });
  for (const type of ["dragenter", "dragover"]) {
    root.addEventListener(type, (event) => {
      const zone = zoneOf(event);
      if (!zone) return;
      event.preventDefault(); // allows the drop
      zone.classList.add("over");
    });
  }
  root.addEventListener("dragleave", (event) => zoneOf(event)?.classList.remove("over"));
  root.addEventListener("drop", (event) => {
    const zone = zoneOf(event);
    if (!zone) return;
    event.preventDefault(); // the browser would open the file instead
    zone.classList.remove("over");
    handle(event.dataTransfer.files);
  });
}
