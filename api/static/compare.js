// #/compare/ID,ID…: the best-so-far value of each experiment's metric in one chart, against trials finished or
// minutes since the experiment was created, from GET /v1/experiments/{id} and its trials.

import { get, getAll } from "./api.js";
import { lineChart } from "./charts.js";
import { ACTIVE_EXPERIMENT, esc, patch, pct, poll } from "./ui.js";

const METRIC_KEYS = { accuracy: "val_accuracy", balanced_accuracy: "val_balanced_accuracy" };
const AXES = [["trials", "trials finished"], ["minutes", "minutes since created"]];

/** Best-so-far points of one experiment: [[trials finished | minutes, best metric]] in finishing order. */
export function bestSoFar(experiment, trials, axis) {
  const key = METRIC_KEYS[experiment.objective?.metric] || "val_accuracy";
  const created = Date.parse(experiment.created_at);
  const ended = trials.filter((t) => t.finished_at).sort((a, b) => Date.parse(a.finished_at) - Date.parse(b.finished_at));
  const points = [];
  let best = -Infinity;
  ended.forEach((trial, index) => {
    if (trial.status === "succeeded" && Number.isFinite(trial[key])) best = Math.max(best, trial[key]);
    if (best === -Infinity) return;
    const x = axis === "minutes" ? (Date.parse(trial.finished_at) - created) / 60_000 : index + 1;
    points.push([x, best]);
  });
  return points;
}

export async function renderCompare(root, page, idList) {
  const ids = [...new Set(idList.split(",").filter(Boolean))];
  document.title = "Compare experiments · nas-service";
  root.innerHTML = `<p><a href="#/experiments">← Experiments</a></p><section class="card" aria-labelledby="compare-title" data-testid="compare-page">
    <div class="title-row"><h2 id="compare-title">Compare ${ids.length} experiments</h2>
      <label>x axis <select id="compare-axis" data-testid="compare-axis">${AXES.map(([v, t]) => `<option value="${v}">${esc(t)}</option>`).join("")}</select></label></div>
    <p class="muted">Each line is the best value of its experiment's metric so far (succeeded trials, validation split).</p>
    <div id="compare-chart"><p class="muted">Loading…</p></div><div id="compare-table"></div></section>`;
  const state = { experiments: [], trials: new Map() };
  const axis = root.querySelector("#compare-axis");
  const draw = () => {
    const rows = state.experiments.map((e) => ({ e, points: bestSoFar(e, state.trials.get(e.id) || [], axis.value) }));
    const sig = JSON.stringify([axis.value, rows.map(({ e, points }) => [e.id, e.name, points])]);
    patch(root.querySelector("#compare-chart"), sig, () => lineChart({
      series: rows.map(({ e, points }) => ({ name: e.name, points, step: true, dots: true })),
      integerX: axis.value === "trials", xLabel: AXES.find(([v]) => v === axis.value)[1], yLabel: "best so far",
      label: `Best value so far of each experiment's metric over ${AXES.find(([v]) => v === axis.value)[1]}`, testid: "compare-chart" }));
    patch(root.querySelector("#compare-table"), sig, () => compareTable(rows));
  };
  axis.addEventListener("change", draw);
  await poll(page, async () => {
    const experiments = await Promise.all(ids.map((id) => get(`/v1/experiments/${encodeURIComponent(id)}`)));
    const trials = await Promise.all(ids.map((id) => getAll(`/v1/experiments/${encodeURIComponent(id)}/trials`)));
    if (!page.current()) return false;
    state.experiments = experiments;
    ids.forEach((id, i) => state.trials.set(id, trials[i].data));
    draw();
    return experiments.some((e) => ACTIVE_EXPERIMENT.has(e.status));
  });
}

function compareTable(rows) {
  const body = rows.map(({ e, points }) => `<tr data-testid="compare-row" data-id="${esc(e.id)}">
    <th scope="row"><a href="#/experiments/${esc(e.id)}">${esc(e.name)}</a></th><td>${esc(e.status)}</td><td>${esc(e.strategy)}</td>
    <td>${esc((e.objective?.metric || "accuracy").replace("_", " "))}</td><td class="num">${e.progress.completed}/${e.progress.max_trials}</td>
    <td class="num" data-testid="compare-best">${points.length ? pct(points[points.length - 1][1]) : "–"}</td></tr>`).join("");
  return `<div class="scroll-x"><table class="data"><caption class="visually-hidden">The compared experiments</caption>
    <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Strategy</th><th scope="col">Metric</th>
    <th scope="col">Trials</th><th scope="col">Best</th></tr></thead><tbody>${body}</tbody></table></div>`;
}
