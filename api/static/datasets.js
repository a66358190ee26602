// Datasets: an upload panel, then each dataset's status, class counts, geometry, splits, ingestion problems and
// sample thumbnails of each class.

import { ApiError, get, getAll } from "./api.js";
import { badge, esc, patch, poll } from "./ui.js";
import { uploadPanel, wireUpload } from "./upload.js";

const SAMPLES_PER_CLASS = 4;

export async function renderDatasets(root, page) {
  root.innerHTML = `<h2 id="ds-title">Datasets</h2>${uploadPanel()}<section aria-labelledby="ds-title">
    <div id="datasets-body" data-testid="datasets"><p class="muted">Loading…</p></div></section>`;
  document.title = "Datasets · nas-service";
  const body = root.querySelector("#datasets-body");
  const thumbnails = lazyThumbnails(body, page);
  let polling = false;
  // Polls while a dataset is processing; an upload starts them again.
  const refresh = () => {
    if (polling) return undefined;
    polling = true;
    return poll(page, async () => {
      let data;
      try {
        ({ data } = await getAll("/v1/datasets"));
      } catch (error) {
        polling = false;  // the next upload may start the polls again
        throw error;
      }
      if (!page.current()) return false;
      if (patch(body, JSON.stringify(data.map((d) => [d.id, d.status, d.updated_at])), () => datasetsTable(data))) {
        thumbnails.observe();
      }
      follow(data);
      polling = data.some((d) => d.status === "processing");
      return polling;
    });
  };
  const follow = wireUpload(root.querySelector("[data-testid=upload-panel]"), page, { onUploaded: refresh });
  await refresh();
}

// Thumbnails are fetched when their row scrolls into view, once per dataset and page: a ready dataset never
// changes, and each request makes the API read the dataset's tensors.
function lazyThumbnails(body, page) {
  const loaded = new Map();  // dataset id → the cell's HTML
  const fill = async (cell) => {
    const id = cell.dataset.samples;
    if (!loaded.has(id)) {
      loaded.set(id, `<span class="muted">Loading…</span>`);
      try {
        const samples = await get(`/v1/datasets/${encodeURIComponent(id)}/samples?per_class=${SAMPLES_PER_CLASS}`);
        loaded.set(id, samplesView(samples.data));
      } catch (error) {
        // Deleted meanwhile (404) or never ready (409): say so in the cell; anything else is the page's error.
        if (!(error instanceof ApiError && [404, 409].includes(error.status))) {
          loaded.delete(id);
          page.fail(error);
          return;
        }
        loaded.set(id, `<span class="muted">not available</span>`);
      }
    }
    if (!page.current()) return;
    for (const target of body.querySelectorAll(`[data-samples="${CSS.escape(id)}"]`)) target.innerHTML = loaded.get(id);
  };
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      fill(entry.target);
    }
  }, { rootMargin: "200px" });
  page.onLeave(() => observer.disconnect());
  return {
    observe() {
      observer.disconnect();
      for (const cell of body.querySelectorAll("[data-samples]")) {
        if (loaded.has(cell.dataset.samples)) cell.innerHTML = loaded.get(cell.dataset.samples);
        else observer.observe(cell);
      }
    },
  };
}

function samplesView(samples) {
  if (!samples.length) return `<span class="muted">–</span>`;
  const byClass = new Map();
  for (const sample of samples) byClass.set(sample.class, [...(byClass.get(sample.class) || []), sample]);
  return `<div class="samples">${[...byClass].map(([name, items]) => `<figure class="sample-class" data-testid="sample-class" data-class="${esc(name)}">
    <figcaption>${esc(name)}</figcaption><div class="thumbs">${items.map((sample, k) =>
      `<img src="data:image/png;base64,${esc(sample.png)}" alt="class ${esc(name)} sample ${k + 1}" data-testid="sample-thumb"
        data-index="${sample.index}" loading="lazy">`).join("")}</div></figure>`).join("")}</div>`;
}

function datasetsTable(datasets) {
  if (!datasets.length) return `<p class="empty">No datasets yet: drop a zip of class folders above, or upload one with <code>nas datasets upload PATH</code>.</p>`;
  const rows = datasets.map((d) => {
    const most = Math.max(1, ...(d.classes || []).map((c) => c.count));
    const classes = (d.classes || []).map((c) => `<li><span class="cls">${esc(c.name)}</span>
      <meter min="0" max="${most}" value="${c.count}" aria-label="${esc(c.name)}: ${c.count} images"></meter><span class="num">${c.count}</span></li>`).join("");
    const geometry = d.image ? `${d.image.channels}×${d.image.height}×${d.image.width}` : "–";
    const splits = d.splits ? `${d.splits.train} / ${d.splits.val} / ${d.splits.test}` : "–";
    const problems = d.errors?.length
      ? `<details><summary>${d.errors.length} problem${d.errors.length > 1 ? "s" : ""}</summary><ul class="errors">${d.errors.slice(0, 200).map((e) =>
        `<li>${Object.entries(e).map(([k, v]) => `<b>${esc(k)}</b> ${esc(typeof v === "object" ? JSON.stringify(v) : v)}`).join(" · ")}</li>`).join("")}</ul></details>`
      : (d.detail ? esc(d.detail) : "none");
    const samples = d.status === "ready"
      ? `<div data-samples="${esc(d.id)}" data-testid="dataset-samples"><span class="muted">Loading…</span></div>` : "–";
    const start = d.status === "ready" ? `<br><a href="#/experiments/new/${esc(d.id)}" class="small" data-testid="dataset-new-experiment">New experiment</a>` : "";
    return `<tr data-testid="dataset-row" data-id="${esc(d.id)}"><th scope="row">${esc(d.name)}${start}</th><td>${badge(d.status, "dataset-status")}</td>
      <td class="num">${d.num_images ?? "–"}</td><td><ul class="classes">${classes || "–"}</ul></td>
      <td class="num">${geometry}</td><td class="num">${splits}</td><td>${samples}</td><td>${problems}</td></tr>`;
  }).join("");
  return `<div class="scroll-x"><table class="data"><caption class="visually-hidden">Datasets, newest first</caption>
    <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Images</th><th scope="col">Classes</th>
    <th scope="col">Channels×H×W</th><th scope="col">Train / val / test</th><th scope="col">Samples (train split)</th><th scope="col">Errors</th></tr></thead>
    <tbody>${rows}</tbody></table></div>`;
}
