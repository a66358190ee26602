// The form that starts a search (POST /v1/experiments). Its fields are a table keyed by the contract's field paths
// ("budget.max_trials"): the body is built from it, and the server's 422 errors land next to the field they name.
// Empty optional fields are left out, so the server's defaults apply.

import { ApiError, get, getAll, newIdempotencyKey, post } from "./api.js";
import { checkOverrides } from "./space-check.js";
import { announce, esc, fmtNumber, problemView } from "./ui.js";

const STRATEGIES = [["evolution", "evolution (aging, seeded)"], ["tpe", "TPE"], ["random", "random"]];
const METRICS = [["accuracy", "accuracy"], ["balanced_accuracy", "balanced accuracy"]];
const MODES = [["accuracy", "the metric alone"], ["pareto", "Pareto: the metric against cost"]];
const MINIMIZE = [["latency_ms", "latency"], ["latency_ms,params", "latency and parameters"]];

// [group legend, fields]; a field: path in the body, label, kind (text, select, list: a select whose value is a
// comma-separated array, integer, number, json), hint.
const GROUPS = [
  ["Search", [
    { path: "dataset_id", label: "Dataset", kind: "dataset" },
    { path: "name", label: "Name", kind: "text", hint: "optional: “strategy on dataset” otherwise" },
    { path: "strategy", label: "Strategy", kind: "select", options: STRATEGIES },
    { path: "objective.metric", label: "Metric", kind: "select", options: METRICS,
      hint: "maximised on the validation split; balanced: mean per-class recall" },
    { path: "objective.mode", label: "Objective", kind: "select", options: MODES,
      hint: "Pareto: the leaderboard ranks by front, the final model takes the front's best metric" },
    { path: "objective.minimize", label: "Pareto: minimise", kind: "list", options: MINIMIZE,
      hint: "used with the Pareto objective only" },
    { path: "objective.latency_target_ms", label: "Latency target (ms)", kind: "number", placeholder: "none",
      hint: "objective “the metric alone”: a soft target, metric × (latency / target)^−0.07" },
  ]],
  ["Budget", [
    { path: "budget.max_trials", label: "Max trials", kind: "integer", placeholder: "100",
      hint: "pruned, stopped and failed trials count" },
    { path: "budget.epochs_per_trial", label: "Epochs per trial", kind: "integer", placeholder: "12" },
    { path: "budget.max_minutes", label: "Max minutes", kind: "number", placeholder: "none",
      hint: "optional: no trial starts after it" },
  ]],
  ["Constraints (optional)", [
    { path: "objective.constraints.max_params", label: "Max parameters", kind: "integer", placeholder: "none" },
    { path: "objective.constraints.max_latency_ms", label: "Max latency (ms)", kind: "number", placeholder: "none",
      hint: "CPU, one image" },
    { path: "objective.constraints.max_mflops", label: "Max MFLOPs", kind: "number", placeholder: "none",
      hint: "per image; a multiply-add counts 2" },
  ]],
];
const ADVANCED = [
  { path: "search_space", label: "Search space overrides", kind: "json",
    placeholder: '{"stage_count": [2, 3], "kernel": [3, 5], "width": {"low": 16, "high": 64}}',
    hint: "checked here against GET /v1/search-space: its keys, each value's type and default domain" },
  // Not sent: how strictly the page checks the search space. The server's hard limits are wider than its defaults.
  { path: "search_space_beyond", label: "Let values go beyond the default domains (the server checks them against its hard limits)",
    kind: "checkbox", local: true, checked: false },
  { path: "pruner", label: "Pruner", kind: "json", placeholder: '{"kind": "median"}',
    hint: "kind asha (default), median or none, with its settings" },
  { path: "strategy_settings", label: "Strategy settings", kind: "json", placeholder: '{"population_size": 20}' },
  { path: "seed", label: "Seed", kind: "integer", placeholder: "random" },
  { path: "concurrency", label: "Concurrency", kind: "integer", placeholder: "1", hint: "trials running at once" },
  { path: "auto_model", label: "Train and export the best trial when the search ends", kind: "checkbox" },
];
const FIELDS = [...GROUPS.flatMap(([, fields]) => fields), ...ADVANCED];

const fieldId = (path) => `f-${path.replace(/\./g, "-")}`;

function control(field, datasets) {
  const id = fieldId(field.path);
  const common = `id="${id}" name="${field.path}" data-testid="${id}" aria-describedby="${id}-hint ${id}-error"`;
  if (field.kind === "dataset") {
    const options = datasets.map((d) => `<option value="${esc(d.id)}">${esc(d.name)} · ${fmtNumber(d.num_images)} images, ${d.classes.length} classes</option>`);
    return `<select ${common}><option value="">${datasets.length ? "Choose a ready dataset" : "No ready dataset yet"}</option>${options.join("")}</select>`;
  }
  if (field.kind === "select" || field.kind === "list") return `<select ${common}>${field.options.map(([v, text]) => `<option value="${v}">${esc(text)}</option>`).join("")}</select>`;
  if (field.kind === "json") return `<textarea ${common} rows="3" spellcheck="false" placeholder="${esc(field.placeholder)}"></textarea>`;
  if (field.kind === "checkbox") return `<input ${common} type="checkbox"${field.checked === false ? "" : " checked"}>`;
  const numeric = field.kind === "integer" || field.kind === "number";
  return `<input ${common} type="${numeric ? "number" : "text"}"${field.kind === "integer" ? ' step="1" inputmode="numeric"' : numeric ? ' step="any" inputmode="decimal"' : ""}
    placeholder="${esc(field.placeholder || "")}" autocomplete="off">`;
}

function fieldView(field, datasets) {
  const id = fieldId(field.path);
  const label = `<label for="${id}">${esc(field.label)}</label>`;
  const input = control(field, datasets);
  return `<div class="field${field.kind === "json" ? " wide" : ""}${field.kind === "checkbox" ? " check" : ""}" data-field="${field.path}">
    ${field.kind === "checkbox" ? input + label : label + input}
    <p class="hint" id="${id}-hint">${esc(field.hint || "")}</p>
    <p class="field-error" id="${id}-error" data-testid="field-error" data-for="${field.path}"></p></div>`;
}

export async function renderNewExperiment(root, page, datasetId) {
  document.title = "New experiment · nas-service";
  root.innerHTML = `<p><a href="#/experiments">← Experiments</a></p><section class="card" aria-labelledby="new-title" data-testid="new-experiment-page">
    <h2 id="new-title">New experiment</h2><p class="muted">Loading datasets…</p></section>`;
  // The space's dimensions and domains check the overrides box; without them the server alone checks it.
  const [{ data }, space] = await Promise.all([getAll("/v1/datasets"), get("/v1/search-space").catch(() => null)]);
  if (!page.current()) return;
  const ready = data.filter((d) => d.status === "ready");
  const processing = data.filter((d) => d.status === "processing").length;
  const section = root.querySelector("section");
  section.innerHTML = `<h2 id="new-title">New experiment</h2>
    ${ready.length ? "" : `<p class="empty">No dataset is ready yet: <a href="#/datasets">upload one</a> first.</p>`}
    ${processing ? `<p class="muted">${processing} more dataset${processing > 1 ? "s are" : " is"} still being ingested.</p>` : ""}
    <form id="experiment-form" novalidate data-testid="experiment-form">
      ${GROUPS.map(([legend, fields]) => `<fieldset><legend>${esc(legend)}</legend><div class="fields">${fields.map((f) => fieldView(f, ready)).join("")}</div></fieldset>`).join("")}
      <details class="advanced" data-testid="advanced"><summary>Advanced: search space, pruner, strategy settings</summary>
        <p class="muted">Each box takes a JSON object, checked here before anything is sent.</p>
        <div class="fields">${ADVANCED.map((f) => fieldView(f, ready)).join("")}</div>
        <details data-testid="space-reference"><summary>What the search space can override</summary><div id="space-reference"></div></details>
      </details>
      <div id="form-problem" data-testid="form-problem"></div>
      <p><button type="submit" data-testid="experiment-submit">Start the search</button></p>
    </form>`;
  const form = section.querySelector("form");
  if (datasetId && ready.some((d) => d.id === datasetId)) form.elements.dataset_id.value = datasetId;
  section.querySelector("[data-testid=space-reference]").addEventListener("toggle", (event) => {
    if (event.target.open) showSpaceReference(section.querySelector("#space-reference"), page, space);
  });

  let sent = { body: null, key: null };  // a second submit of the same body reuses its idempotency key
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const { body, errors } = readForm(form, space);
    const problemBox = form.querySelector("#form-problem");
    if (errors.length) {
      for (const [path, message] of errors) markField(form, path, message);
      const count = new Set(errors.map(([path]) => path)).size;
      problemBox.innerHTML = `<p class="error" role="alert" data-testid="form-error">Nothing was sent: ${count === 1 ? "one field needs" : `${count} fields need`} fixing.</p>`;
      focusFirstError(form);
      return;
    }
    const json = JSON.stringify(body);
    if (sent.body !== json) sent = { body: json, key: newIdempotencyKey() };
    const button = form.querySelector("[data-testid=experiment-submit]");
    button.disabled = true;
    problemBox.innerHTML = `<p class="muted">Creating the experiment…</p>`;
    try {
      const experiment = await post("/v1/experiments", body, { "Idempotency-Key": sent.key });
      announce(`Experiment ${experiment.name} created.`);
      location.hash = `#/experiments/${encodeURIComponent(experiment.id)}`;
    } catch (error) {
      if (!(error instanceof ApiError)) { problemBox.innerHTML = ""; page.fail(error); return; }
      problemBox.innerHTML = problemView(error, "form-error");
      for (const item of error.problem?.errors || []) {
        const path = String(item.field ?? "").replace(/^body\./, "");
        const field = owner(path);
        if (field) markField(form, field.path, path === field.path ? item.error : `${path.slice(field.path.length + 1)}: ${item.error}`);
      }
      focusFirstError(form);
      announce(`Not created: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

// The body from the form, and [path, message] for each field that cannot be sent as it is.
function readForm(form, space) {
  const body = {};
  const errors = [];
  for (const field of FIELDS) {
    if (field.local) continue;
    const input = form.elements[field.path];
    let value;
    if (field.kind === "checkbox") value = input.checked;
    else if (field.kind === "list") {  // only where the objective uses it (the server refuses it elsewhere)
      if (field.path === "objective.minimize" && form.elements["objective.mode"].value !== "pareto") continue;
      value = input.value.split(",");
    }
    else if (field.kind === "integer" || field.kind === "number") {
      if (input.validity.badInput) { errors.push([field.path, "is not a number"]); continue; }
      if (input.value.trim() === "") continue;
      value = Number(input.value);
    } else if (field.kind === "json") {
      const text = input.value.trim();
      if (!text) continue;
      try {
        value = JSON.parse(text);
      } catch (error) {
        errors.push([field.path, `is not valid JSON: ${error.message}`]);
        continue;
      }
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        errors.push([field.path, "must be a JSON object: {…}"]);
        continue;
      }
      if (field.path === "search_space" && space) {
        const problems = checkOverrides(value, space, { beyondDefaults: form.elements.search_space_beyond.checked });
        if (problems.length) {
          for (const { key, error } of problems) errors.push([field.path, `${key}: ${error}`]);
          continue;
        }
      }
    } else {
      value = input.value.trim();
      if (!value) {
        if (field.path === "dataset_id") errors.push([field.path, "choose a ready dataset"]);
        continue;
      }
    }
    setPath(body, field.path, value);
  }
  return { body, errors };
}

function setPath(target, path, value) {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) node = node[key] ??= {};
  node[keys[keys.length - 1]] = value;
}

// The field an error path belongs to: itself, or the nearest one above it ("search_space.width" → "search_space").
const owner = (path) => FIELDS.filter((f) => path === f.path || path.startsWith(`${f.path}.`))
  .sort((a, b) => b.path.length - a.path.length)[0];

function markField(form, path, message) {
  const input = form.elements[path];
  const slot = form.querySelector(`[data-for="${CSS.escape(path)}"]`);
  if (!input || !slot) return;
  input.setAttribute("aria-invalid", "true");
  slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
  input.closest("details")?.setAttribute("open", "");
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

const focusFirstError = (form) => form.querySelector("[aria-invalid=true]")?.focus();

// The override grammar and each dimension's domain, from GET /v1/search-space, once per page.
async function showSpaceReference(box, page, loaded) {
  if (box.dataset.loaded) return;
  box.dataset.loaded = "1";
  box.innerHTML = `<p class="muted">Loading…</p>`;
  try {
    const space = loaded || await get("/v1/search-space");
    const domain = (d) => (d.kind === "categorical" ? d.choices.map(String).join(", ") : `${d.low} … ${d.high}${d.log ? " (log)" : ""}`);
    box.innerHTML = `<ul class="plain grammar">${Object.entries(space.override.values).map(([k, v]) => `<li><b>${esc(k)}</b>: ${esc(v)}</li>`).join("")}</ul>
      <table class="data compact"><thead><tr><th scope="col">Key</th><th scope="col">Default domain</th><th scope="col">What it is</th></tr></thead><tbody>
      ${Object.entries(space.dimensions).map(([name, dim]) => `<tr><th scope="row"><code>${esc(name)}</code>${dim.per_stage ? ` <span class="muted">per stage</span>` : ""}</th>
        <td>${esc(domain(dim.domain))}</td><td>${esc(dim.description)}</td></tr>`).join("")}</tbody></table>`;
  } catch (error) {
    delete box.dataset.loaded;
    box.innerHTML = "";
    page.fail(error);
  }
}
