// The dashboard shell: key prompt, hash routing (#/experiments, #/experiments/new[/DATASET], #/experiments/ID,
// #/compare/ID,ID…, #/datasets, #/models, #/models/ID) and the list pages. Each page gets a `page` handle: current() turns false when the user navigates away.

import { getAll, key, Unauthorized } from "./api.js";
import { renderDatasets } from "./datasets.js";
import { renderExperiment } from "./experiment.js";
import { renderModel, renderModels } from "./models.js";
import { ACTIVE_EXPERIMENT, badge, esc, fmtNumber, patch, pct, poll, when } from "./ui.js";

const view = document.getElementById("view");
const prompt = document.getElementById("key-prompt");
const keyForm = document.getElementById("key-form");
const keyError = document.getElementById("key-error");
const signOut = document.getElementById("sign-out");
let activePage = null;

function showKeyPrompt(message = "") {
  activePage?.leave();
  activePage = null;
  key.clear();
  view.replaceChildren();
  prompt.hidden = false;
  signOut.hidden = true;
  keyError.textContent = message;
  document.getElementById("key-input").focus();
}

keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = new FormData(keyForm).get("key");
  if (!value.trim()) return;
  key.set(value);
  keyForm.reset();
  route();
});

signOut.addEventListener("click", () => showKeyPrompt());

function makePage() {
  const leaves = [];
  const page = {
    live: true,
    current: () => page.live && activePage === page,
    onLeave: (fn) => leaves.push(fn),
    leave: () => { page.live = false; leaves.forEach((fn) => fn()); },
    fail: (error) => {
      if (!page.current()) return;
      if (error instanceof Unauthorized) { showKeyPrompt("The API key was refused. Paste a valid key."); return; }
      const box = document.getElementById("page-error") || view.insertAdjacentElement("afterbegin",
        Object.assign(document.createElement("p"), { id: "page-error", className: "error" }));
      box.setAttribute("role", "alert");
      box.dataset.testid = "page-error";
      box.textContent = `Error: ${error.message}`;
      console.error(error);
    },
  };
  return page;
}

// The form that starts a search loads on first use: the pages opened most keep a small module graph.
const renderNewExperiment = async (...args) => (await import("./new-experiment.js")).renderNewExperiment(...args);
const renderCompare = async (...args) => (await import("./compare.js")).renderCompare(...args);

const ROUTES = [
  [/^#\/experiments\/new(?:\/([\w-]+))?$/, "experiments", renderNewExperiment],
  [/^#\/experiments\/([\w-]+)$/, "experiments", renderExperiment],
  [/^#\/compare\/([\w,-]+)$/, "experiments", renderCompare],
  [/^#\/models\/([\w-]+)$/, "models", renderModel],
  [/^#\/datasets$/, "datasets", renderDatasets],
  [/^#\/models$/, "models", renderModels],
  [/^#\/experiments$/, "experiments", renderExperiments],
];

async function route() {
  if (!key.get()) { showKeyPrompt(); return; }
  prompt.hidden = true;
  signOut.hidden = false;
  const hash = location.hash || "#/experiments";
  let found = { section: "experiments", render: renderExperiments, args: [] };
  for (const [pattern, section, render] of ROUTES) {
    const match = hash.match(pattern);
    if (match) { found = { section, render, args: match.slice(1) }; break; }
  }
  const { section, render, args } = found;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  activePage?.leave();
  const page = makePage();
  activePage = page;
  view.replaceChildren();
  try {
    await render(view, page, ...args);
  } catch (error) {
    page.fail(error);
  }
}

window.addEventListener("hashchange", route);

async function renderExperiments(root, page) {
  root.innerHTML = `<section aria-labelledby="exp-title"><div class="title-row"><h2 id="exp-title">Experiments</h2>
    <p class="muted" data-testid="experiments-total"></p><a class="button" href="#/experiments/new" data-testid="new-experiment">New experiment</a></div>
    <p class="actions"><button type="button" data-testid="compare-selected" disabled>Compare selected</button>
      <span class="muted" id="compare-hint">Tick two or more experiments to compare their best-so-far curves.</span></p>
    <div id="experiments-body" data-testid="experiments"><p class="muted">Loading…</p></div></section>`;
  document.title = "Experiments · nas-service";
  const body = root.querySelector("#experiments-body");
  const total = root.querySelector("[data-testid=experiments-total]");
  const compare = root.querySelector("[data-testid=compare-selected]");
  const selected = new Set();  // ticked ids, kept across the table's repaints while polling
  const showSelection = () => {
    compare.disabled = selected.size < 2;
    root.querySelector("#compare-hint").textContent = selected.size < 2
      ? "Tick two or more experiments to compare their best-so-far curves." : `${selected.size} selected`;
  };
  body.addEventListener("change", (event) => {
    const box = event.target.closest("input[data-select]");
    if (!box) return;
    if (box.checked) selected.add(box.dataset.select); else selected.delete(box.dataset.select);
    showSelection();
  });
  compare.addEventListener("click", () => { location.hash = `#/compare/${[...selected].join(",")}`; });
  await poll(page, async () => {
    const { data } = await getAll("/v1/experiments");
    if (!page.current()) return false;
    total.textContent = `${data.length} in this project`;
    const known = new Set(data.map((e) => e.id));
    for (const id of selected) if (!known.has(id)) selected.delete(id);
    showSelection();
    patch(body, JSON.stringify(data.map((e) => [e.id, e.status, e.progress, e.best, e.updated_at])), () => experimentsTable(data, selected));
    return data.some((e) => ACTIVE_EXPERIMENT.has(e.status));
  });
}

function experimentsTable(experiments, selected) {
  if (!experiments.length) return `<p class="empty">No experiments yet: start one with <a href="#/experiments/new">the form</a>, <code>nas experiments create</code> or <code>POST /v1/experiments</code>.</p>`;
  const rows = experiments.map((e) => {
    const p = e.progress;
    const done = p.completed;
    return `<tr data-testid="experiment-row" data-id="${esc(e.id)}">
      <td><input type="checkbox" data-select="${esc(e.id)}" data-testid="experiment-select"${selected.has(e.id) ? " checked" : ""}
        aria-label="Compare ${esc(e.name)}"></td>
      <th scope="row"><a href="#/experiments/${esc(e.id)}" data-testid="experiment-link">${esc(e.name)}</a></th>
      <td>${badge(e.status, "experiment-row-status")}</td>
      <td>${esc(e.strategy)}</td>
      <td><progress max="${p.max_trials}" value="${done}" aria-label="${done} of ${p.max_trials} trials finished"></progress>
        <span class="num">${done}/${p.max_trials}</span>${p.running ? ` <span class="muted">(${p.running} running)</span>` : ""}</td>
      <td class="num">${e.best ? `${pct(e.best.val_accuracy)} <span class="muted">#${e.best.number}</span>` : "–"}</td>
      <td class="num">${e.best?.params ? fmtNumber(e.best.params) : "–"}</td>
      <td>${esc(when(e.created_at))}</td></tr>`;
  }).join("");
  return `<div class="scroll-x"><table class="data"><caption class="visually-hidden">Experiments, newest first</caption>
    <thead><tr><th scope="col"><span class="visually-hidden">Compare</span></th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Strategy</th><th scope="col">Progress</th>
    <th scope="col">Best accuracy</th><th scope="col">Best params</th><th scope="col">Created</th></tr></thead>
    <tbody>${rows}</tbody></table></div>`;
}

route();
