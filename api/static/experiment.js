// One experiment: header with cancel/resume, live trial table, curves, leaderboard, Pareto, decisions, architecture.
// Polls every 2 s while the experiment is active and re-renders only the sections whose data changed.

import { get, getAll, post } from "./api.js";
import { lineChart, parallelCoordinates, scatter, stageDiagram, PALETTE } from "./charts.js";
import { ACTIVE_EXPERIMENT, announce, badge, esc, fmtNumber, ms, patch, pct, poll, seconds, when } from "./ui.js";

const TERMINAL_TRIAL = new Set(["succeeded", "pruned", "stopped", "failed", "canceled"]);
const TRIAL_STATUSES = ["pending", "running", "succeeded", "pruned", "stopped", "failed", "canceled"];
const COLUMNS = [
  ["number", "#", (t) => t.number],
  ["status", "Status", (t) => t.status],
  ["val_accuracy", "Val accuracy", (t) => t.val_accuracy],
  ["val_loss", "Val loss", (t) => t.val_loss],
  ["params", "Params", (t) => t.params],
  ["flops", "FLOPs", (t) => t.flops],
  ["latency_ms", "Latency", (t) => t.latency_ms],
  ["epochs", "Epochs", (t) => t.epochs.length],
  ["duration_s", "Duration", (t) => t.duration_s],
];
const MAX_CURVES = 8;

export async function renderExperiment(root, page, experimentId) {
  const base = `/v1/experiments/${encodeURIComponent(experimentId)}`;
  const state = {
    experiment: null, trials: [], byId: new Map(), board: null, boardKey: "", selected: [],
    sort: { key: "number", dir: 1 }, filter: "", models: null,
    picked: false,  // the user chose the compared trials: no default selection any more
    curveMetric: null,  // accuracy or balanced_accuracy; the experiment's metric until the user picks one
  };
  let polling = false;
  root.innerHTML = skeleton();
  const $ = (id) => root.querySelector(`#${id}`);

  // Controls are wired once; the sections below them are re-rendered from `state`.
  $("status-filter").addEventListener("change", (event) => { state.filter = event.target.value; drawTable(); });
  $("curve-metric").addEventListener("change", (event) => { state.curveMetric = event.target.value; drawSelection(); });
  $("curves-clear").addEventListener("click", () => {
    state.selected = [];
    state.picked = true;
    drawSelection();
    drawTable();
  });
  $("trial-table").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-sort]");
    if (!button) return;
    const column = button.dataset.sort;
    state.sort = { key: column, dir: state.sort.key === column ? -state.sort.dir : (column === "number" || column === "status" ? 1 : -1) };
    drawTable();
    root.querySelector(`button[data-sort="${column}"]`)?.focus();
  });
  $("trial-table").addEventListener("change", (event) => {
    const box = event.target.closest("input[data-select]");
    if (!box) return;
    const id = box.dataset.select;
    state.selected = state.selected.filter((s) => s !== id);
    if (box.checked) state.selected.push(id);
    state.selected = state.selected.slice(-MAX_CURVES);
    state.picked = true;
    drawSelection();
    drawTable();
  });
  $("trial-table").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-stop]");
    if (!button) return;
    const number = Number(button.dataset.stop);
    if (!window.confirm(`Stop trial ${number}? It keeps the epochs it trained; the search goes on.`)) return;
    button.disabled = true;
    try {
      await post(`${base}/trials/${number}/stop`);
      const trial = state.trials.find((t) => t.number === number);
      if (trial) trial.stop_requested_at = trial.stop_requested_at || new Date().toISOString();
      announce(`Trial ${number} is stopping.`);
      drawTable();
      startPolling();
    } catch (error) {
      page.fail(error);
      drawTable();
    }
  });
  $("actions").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    let body;
    if (button.dataset.action === "extend") {
      // A finished search continues only with a larger budget: the new total of trials (those run count).
      const asked = window.prompt("Run the search on to how many trials in all?", String(state.experiment.budget.max_trials + 10));
      const total = Number.parseInt(asked ?? "", 10);
      if (!Number.isFinite(total)) return;
      body = { max_trials: total };
    }
    button.disabled = true;
    try {
      state.experiment = await post(`${base}/${button.dataset.action === "extend" ? "resume" : button.dataset.action}`, body);
      announce(`Experiment ${state.experiment.name} is ${state.experiment.status}.`);
      drawHeader();
      if (ACTIVE_EXPERIMENT.has(state.experiment.status)) startPolling();
    } catch (error) {
      page.fail(error);
      drawHeader();
    }
  });

  function drawHeader() {
    const e = state.experiment;
    document.title = `${e.name} · nas-service`;
    const p = e.progress;
    patch($("header"), JSON.stringify(e), () => `
      <div class="title-row"><h2 id="exp-name">${esc(e.name)}</h2>${badge(e.status, "experiment-status")}</div>
      <dl class="facts">
        <div><dt>Strategy</dt><dd>${esc(e.strategy)}</dd></div>
        <div><dt>Progress</dt><dd><progress max="${p.max_trials}" value="${p.completed}" aria-label="${p.completed} of ${p.max_trials} trials finished"></progress>
          <span data-testid="experiment-progress">${p.completed}/${p.max_trials}</span></dd></div>
        <div><dt>Trials</dt><dd>${p.succeeded} succeeded · ${p.running} running · ${p.pending} pending · ${p.pruned} pruned · ${p.stopped ?? 0} stopped · ${p.failed} failed · ${p.canceled} canceled</dd></div>
        <div><dt>Best</dt><dd data-testid="experiment-best">${e.best ? `${pct(e.best.val_accuracy)} (#${e.best.number}, ${fmtNumber(e.best.params)} params)` : "–"}</dd></div>
        <div><dt>Epochs per trial</dt><dd>${e.budget.epochs_per_trial}</dd></div>
        <div><dt>Elapsed</dt><dd>${seconds(e.elapsed_s)}</dd></div>
        <div><dt>Dataset</dt><dd class="clip"><a href="#/datasets" title="${esc(e.dataset_id ?? "")}">${esc(e.dataset_id?.slice(0, 12) ?? "deleted")}</a></dd></div>
        <div><dt>Created</dt><dd>${esc(when(e.created_at))}</dd></div>
      </dl>${e.detail ? `<p class="muted" data-testid="experiment-detail">${esc(e.detail)}</p>` : ""}`);
    $("actions").innerHTML = `
      <button type="button" data-action="cancel" data-testid="cancel-button" ${["queued", "running"].includes(e.status) ? "" : "disabled"}>Cancel search</button>
      <button type="button" data-action="resume" data-testid="resume-button" class="secondary" ${["canceled", "failed"].includes(e.status) ? "" : "disabled"}>Resume</button>
      <button type="button" data-action="extend" data-testid="extend-button" class="secondary" ${e.status === "succeeded" ? "" : "disabled"}>Extend…</button>`;
  }

  function sortedTrials() {
    const column = COLUMNS.find(([k]) => k === state.sort.key) || COLUMNS[0];
    const value = column[2];
    const rows = state.filter ? state.trials.filter((t) => t.status === state.filter) : state.trials.slice();
    const { dir } = state.sort;
    return rows.sort((a, b) => {
      const va = value(a), vb = value(b);
      if (va === vb) return a.number - b.number;
      if (va === null || va === undefined) return 1;  // missing values last in both directions
      if (vb === null || vb === undefined) return -1;
      return (va < vb ? -1 : 1) * dir;
    });
  }

  function drawTable() {
    const rows = sortedTrials();
    const selected = new Set(state.selected);
    const head = COLUMNS.map(([k, label]) => {
      const sort = state.sort.key === k ? (state.sort.dir > 0 ? "ascending" : "descending") : "none";
      return `<th scope="col" aria-sort="${sort}"><button type="button" data-sort="${k}" data-testid="sort-${k}">${label}<span aria-hidden="true">${sort === "ascending" ? " ▲" : sort === "descending" ? " ▼" : ""}</span></button></th>`;
    }).join("");
    // One string for the whole body: a thousand rows stay a few milliseconds of work.
    const body = rows.map((t) => `<tr data-testid="trial-row" data-number="${t.number}" data-status="${t.status}"${selected.has(t.id) ? ' class="selected"' : ""}>
      <td><input type="checkbox" data-select="${esc(t.id)}" aria-label="Show trial ${t.number}" ${selected.has(t.id) ? "checked" : ""}></td>
      <th scope="row">${t.number}</th><td>${badge(t.status, "trial-status")}</td>
      <td class="num" data-value="${t.val_accuracy ?? ""}">${pct(t.val_accuracy)}</td><td class="num">${fmtNumber(t.val_loss)}</td>
      <td class="num">${fmtNumber(t.params)}</td><td class="num">${fmtNumber(t.flops)}</td><td class="num">${ms(t.latency_ms)}</td>
      <td class="num">${t.planned_epochs ? `${t.epochs.length} / ${t.planned_epochs}` : t.epochs.length}</td><td class="num">${seconds(t.duration_s)}</td>
      <td>${stopButton(t)}</td></tr>`).join("");
    $("trial-count").textContent = `${rows.length} of ${state.trials.length} trials`;
    $("trial-table").innerHTML = `<table class="data compact"><caption class="visually-hidden">Trials; column headers sort</caption>
      <thead><tr><th scope="col"><span class="visually-hidden">Selected</span></th>${head}<th scope="col"><span class="visually-hidden">Control</span></th></tr></thead>
      <tbody>${body || `<tr><td colspan="${COLUMNS.length + 2}" class="empty">No trials${state.filter ? ` with status ${esc(state.filter)}` : ""} yet.</td></tr>`}</tbody></table>`;
  }

  // The selected trials' curves overlaid, one color per trial: accuracy (or balanced accuracy) and loss per epoch.
  function drawSelection() {
    const chosen = state.selected.map((id) => state.byId.get(id)).filter(Boolean);
    const metric = state.curveMetric || state.experiment?.objective?.metric || "accuracy";
    $("curve-metric").value = metric;
    $("curves-clear").disabled = !chosen.length;
    const sig = JSON.stringify([metric, chosen.map((t) => [t.id, t.status, t.epochs.length])]);
    patch($("curves"), sig, () => {
      if (!chosen.length) return `<p class="empty">Tick trials in the table (up to ${MAX_CURVES}) to overlay their learning curves.</p>`;
      const key = metric === "balanced_accuracy" ? "val_balanced_accuracy" : "val_accuracy";
      const yLabel = metric === "balanced_accuracy" ? "val balanced accuracy" : "val accuracy";
      const accuracy = chosen.map((t, i) => ({ name: `#${t.number}`, color: PALETTE[i % PALETTE.length], dots: true,
        points: t.epochs.map((e) => [e.epoch, e[key]]).filter(([, value]) => Number.isFinite(value)) }));
      const loss = chosen.flatMap((t, i) => [
        { name: `#${t.number} val`, color: PALETTE[i % PALETTE.length], points: t.epochs.map((e) => [e.epoch, e.val_loss]) },
        { name: `#${t.number} train`, color: PALETTE[i % PALETTE.length], dash: true, points: t.epochs.map((e) => [e.epoch, e.train_loss]) }]);
      return `<div class="charts">${lineChart({ series: accuracy, xLabel: "epoch", yLabel, integerX: true, label: `${yLabel} per epoch of the selected trials`, testid: "curve-accuracy" })}
        ${lineChart({ series: loss, xLabel: "epoch", yLabel: "loss", integerX: true, label: "Validation (solid) and training (dashed) loss per epoch of the selected trials", testid: "curve-loss" })}</div>`;
    });
    const last = chosen[chosen.length - 1];
    patch($("architecture"), last ? last.id : "", () => last ? `<p>Trial <strong>#${last.number}</strong> · ${fmtNumber(last.params)} params · ${fmtNumber(last.flops)} FLOPs · train: ${esc(Object.entries(last.arch.train || {}).map(([k, v]) => `${k} ${typeof v === "number" ? fmtNumber(v) : v}`).join(", "))}</p>
      ${stageDiagram({ arch: last.arch, label: `Architecture of trial ${last.number}: stem, ${last.arch.arch.stages.length} stages, head`, testid: "arch-diagram" })}
      <details><summary>Decisions</summary><dl class="decisions">${Object.entries(last.decisions).map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(typeof v === "number" ? fmtNumber(v) : v)}</dd></div>`).join("")}</dl></details>`
      : `<p class="empty">Select a trial to see its architecture.</p>`);
    drawParallel();
  }

  function drawCharts() {
    const finished = state.trials.filter((t) => t.status === "succeeded" && Number.isFinite(t.val_accuracy));
    let best = -Infinity;
    const bestSoFar = [], each = [];
    for (const t of finished) {
      best = Math.max(best, t.val_accuracy);
      bestSoFar.push([t.number, best]);
      each.push([t.number, t.val_accuracy]);
    }
    patch($("best-so-far"), JSON.stringify(each), () => lineChart({
      series: [{ name: "best so far", points: bestSoFar, step: true, color: PALETTE[0] },
        { name: "trial accuracy", points: each, line: false, dots: true, color: PALETTE[1] }],
      integerX: true, xLabel: "trial number", yLabel: "val accuracy", label: "Best validation accuracy so far over trial number", testid: "best-so-far-chart" }));
  }

  function drawParallel() {
    const finished = state.trials.filter((t) => t.status === "succeeded");
    patch($("parallel"), JSON.stringify([finished.map((t) => t.id), state.selected]), () => parallelCoordinates({
      trials: finished, highlight: new Set(state.selected), testid: "parallel-chart",
      label: "Parallel coordinates: each finished trial's decisions and its validation accuracy" }));
  }

  function drawBoard() {
    const board = state.board;
    const front = new Set(board.pareto);
    const rows = board.data.map((t) => `<tr data-testid="leaderboard-row" data-id="${esc(t.id)}">
      <td class="num">${t.rank}</td><th scope="row" data-testid="lb-number">${t.number}</th>
      <td class="num" data-testid="lb-accuracy" data-value="${t.val_accuracy}">${pct(t.val_accuracy)}</td>
      <td class="num">${fmtNumber(t.params)}</td><td class="num">${fmtNumber(t.flops)}</td><td class="num">${ms(t.latency_ms)}</td>
      <td>${front.has(t.id) ? `<span class="front-mark">on front</span>` : ""}</td>
      <td><button type="button" class="quiet" data-show="${esc(t.id)}" aria-label="Show trial ${t.number}">Show</button></td></tr>`).join("");
    $("leaderboard").innerHTML = board.data.length ? `<table class="data compact" data-testid="leaderboard-table">
      <caption class="visually-hidden">Leaderboard: feasible succeeded trials by validation accuracy</caption>
      <thead><tr><th scope="col">Rank</th><th scope="col">Trial</th><th scope="col">Val accuracy</th><th scope="col">Params</th>
      <th scope="col">FLOPs</th><th scope="col">Latency</th><th scope="col">Pareto</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${rows}</tbody></table>${board.total > board.data.length ? `<p class="muted">Top ${board.data.length} of ${board.total}.</p>` : ""}`
      : `<p class="empty">No succeeded trial meets the constraints yet.</p>`;
    const points = state.trials.filter((t) => t.status === "succeeded");
    $("pareto").innerHTML = `<div class="charts">
      ${scatter({ points, front, xKey: "latency_ms", xLabel: "latency (ms)", label: "Validation accuracy against CPU latency; the Pareto front is highlighted", testid: "pareto-latency" })}
      ${scatter({ points, front, xKey: "params", xLabel: "parameters (log)", log: true, label: "Validation accuracy against parameter count; the Pareto front is highlighted", testid: "pareto-params" })}</div>`;
  }
  $("leaderboard").addEventListener("click", (event) => {
    const id = event.target.closest("button[data-show]")?.dataset.show;
    if (!id) return;
    state.selected = [...state.selected.filter((s) => s !== id), id].slice(-MAX_CURVES);
    state.picked = true;
    drawSelection();
    drawTable();
    $("selection-title").scrollIntoView({ block: "start" });
  });

  function merge(rows) {
    let changed = false;
    for (const t of rows) {
      const old = state.byId.get(t.id);
      if (old && old.status === t.status && old.epochs.length === t.epochs.length && old.val_accuracy === t.val_accuracy
        && old.latency_ms === t.latency_ms) continue;
      changed = true;
      state.byId.set(t.id, t);
    }
    if (changed) state.trials = [...state.byId.values()].sort((a, b) => a.number - b.number);
    return changed;
  }

  function drawTrials() {
    drawTable();
    drawCharts();
    drawSelection();
  }

  async function refreshBoard() {
    const key = `${state.experiment.progress.succeeded}|${state.experiment.status}|${state.trials.length}`;
    if (key === state.boardKey) return;
    state.boardKey = key;
    state.board = await get(`${base}/leaderboard?limit=100`);
    if (!page.current()) return;
    drawBoard();
    selectDefault();
  }

  // Until the user picks trials: the leaderboard's best, else the latest trial that has trained an epoch.
  function selectDefault() {
    if (state.selected.length || state.picked) return;
    const fallback = [...state.trials].reverse().find((t) => t.epochs.length);
    const id = state.board?.data[0]?.id || fallback?.id;
    if (!id) return;
    state.selected = [id];
    drawSelection();
    drawTable();
  }

  async function refreshModels() {
    const models = await get(`${base}/models?limit=50`);
    if (!page.current()) return;
    patch($("models"), JSON.stringify(models.data.map((m) => [m.id, m.status])), () => models.data.length
      ? `<ul class="plain">${models.data.map((m) => `<li><a href="#/models/${esc(m.id)}" data-testid="experiment-model-link">Model of trial ${esc(m.trial_id.slice(0, 8))}</a> ${badge(m.status, "model-status")} ${m.test_accuracy != null ? `test accuracy ${pct(m.test_accuracy)}` : ""}</li>`).join("")}</ul>`
      : `<p class="empty">No final model yet.</p>`);
  }

  // First load: the header, then trials 500 at a time, painting after the first page.
  const experimentLoaded = get(base).then((experiment) => {
    if (!page.current()) return;
    state.experiment = experiment;
    drawHeader();
    if (!state.curveMetric && experiment.objective?.metric !== "accuracy") drawSelection();  // its metric's curves
  });
  experimentLoaded.catch(() => {});  // awaited below; this only keeps an early failure from being "unhandled"
  await getAll(`${base}/trials`, { onPage: (rows) => {
    if (!page.current() || !merge(rows)) return;
    drawTrials();
    // Marks for the browser's performance timeline: when the first page of trials is on screen, and all of them.
    if (!performance.getEntriesByName("nas:trials-painted").length) performance.mark("nas:trials-painted", { detail: rows.length });
  } });
  if (!page.current()) return;
  if (!state.trials.length) drawTrials();  // the empty table and charts say "no trials yet"
  performance.mark("nas:trials-complete", { detail: state.trials.length });
  await experimentLoaded;
  if (!page.current()) return;
  await Promise.all([refreshBoard(), refreshModels()]);

  function startPolling() {
    if (polling) return;
    polling = true;
    poll(page, async () => {
      const before = state.experiment.status;
      const experiment = await get(base);
      if (!page.current()) return false;
      state.experiment = experiment;
      if (experiment.status !== before) announce(`Experiment ${experiment.name} is ${experiment.status}.`);
      drawHeader();
      // Trials are numbered and never deleted: refetch from the first one that can still change.
      const firstOpen = state.trials.findIndex((t) => !TERMINAL_TRIAL.has(t.status));
      const offset = ACTIVE_EXPERIMENT.has(experiment.status) ? (firstOpen < 0 ? state.trials.length : firstOpen) : 0;
      const fresh = await getAll(`${base}/trials`, { offset });
      if (!page.current()) return false;
      if (merge(fresh.data)) drawTrials();
      await refreshBoard();
      selectDefault();
      const active = ACTIVE_EXPERIMENT.has(experiment.status);
      if (!active) { await refreshModels(); polling = false; }
      return active;
    });
  }
  if (ACTIVE_EXPERIMENT.has(state.experiment.status)) setTimeout(startPolling, 2000);
}

// Pending and running trials can be stopped one by one (the search goes on); a requested stop shows until it ends.
function stopButton(trial) {
  if (!["pending", "running"].includes(trial.status)) return "";
  if (trial.stop_requested_at) return `<button type="button" class="secondary" disabled data-testid="trial-stopping">stopping…</button>`;
  return `<button type="button" class="secondary" data-stop="${trial.number}" data-testid="trial-stop" aria-label="Stop trial ${trial.number}">Stop</button>`;
}

function skeleton() {
  const options = ["", ...TRIAL_STATUSES].map((s) => `<option value="${s}">${s || "all statuses"}</option>`).join("");
  return `<p><a href="#/experiments">← Experiments</a></p>
  <section class="card" aria-labelledby="exp-name" data-testid="experiment-page">
    <div id="header" data-testid="experiment-header"><p class="muted">Loading…</p></div>
    <div id="actions" class="actions"></div>
  </section>
  <section class="card" aria-labelledby="trials-title">
    <div class="title-row"><h3 id="trials-title">Trials</h3><span id="trial-count" class="muted" data-testid="trial-count"></span>
      <label class="inline">Status <select id="status-filter" data-testid="status-filter">${options}</select></label></div>
    <div id="trial-table" class="table-scroll" data-testid="trial-table"></div>
  </section>
  <div class="grid-2">
    <section class="card" aria-labelledby="selection-title"><div class="title-row"><h3 id="selection-title">Learning curves</h3>
      <label class="inline">Accuracy <select id="curve-metric" data-testid="curve-metric"><option value="accuracy">val accuracy</option>
        <option value="balanced_accuracy">val balanced accuracy</option></select></label>
      <button type="button" class="quiet" id="curves-clear" data-testid="curves-clear">Clear</button></div>
      <div id="curves" data-testid="curves"></div></section>
    <section class="card" aria-labelledby="bsf-title"><h3 id="bsf-title">Best so far</h3><div id="best-so-far" data-testid="best-so-far"></div></section>
  </div>
  <section class="card" aria-labelledby="arch-title"><h3 id="arch-title">Architecture of the selected trial</h3><div id="architecture" data-testid="architecture"></div></section>
  <section class="card" aria-labelledby="pareto-title"><h3 id="pareto-title">Pareto front</h3><div id="pareto" data-testid="pareto"></div></section>
  <section class="card" aria-labelledby="lb-title"><h3 id="lb-title">Leaderboard</h3><div id="leaderboard" class="table-scroll short" data-testid="leaderboard"><p class="muted">Loading…</p></div></section>
  <section class="card" aria-labelledby="pc-title"><h3 id="pc-title">Decisions vs accuracy</h3><div id="parallel" data-testid="parallel"></div></section>
  <section class="card" aria-labelledby="models-title"><h3 id="models-title">Final models</h3><div id="models" data-testid="experiment-models"></div></section>`;
}
