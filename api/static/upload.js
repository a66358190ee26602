// The datasets page's upload panel: a zip dropped on the zone (or chosen) goes to POST /v1/datasets with a progress
// bar; the new dataset's status is then followed, from the page's polls, until it is ready or failed.

import { ApiError, newIdempotencyKey, upload } from "./api.js";
import { announce, badge, esc, fmtNumber, onFiles, problemView } from "./ui.js";

export const uploadPanel = () => `<section class="card" aria-labelledby="upload-title" data-testid="upload-panel">
  <h3 id="upload-title">Upload a dataset</h3>
  <div class="upload-row">
    <div class="field"><label for="upload-name">Name <span class="muted">(optional: the file name otherwise)</span></label>
      <input id="upload-name" type="text" autocomplete="off" data-testid="upload-name"></div>
    <div class="drop-zone" data-testid="dataset-drop-zone"><p>Drop a zip of class folders here, or <label class="file-pick">choose
      a file<input type="file" accept=".zip,application/zip" data-testid="upload-input"></label></p>
      <p class="muted">One folder per class with its images (PNG, JPEG, GIF, BMP, TIFF or WebP). Every file is checked,
        then the images are split into train, validation and test.</p></div>
  </div>
  <div id="upload-state" data-testid="upload-state"></div></section>`;

// Wires the panel; `onUploaded(dataset)` runs once the API has accepted an archive. Returns `follow(datasets)`,
// which the page calls with every list it polls, to show what became of the uploaded dataset.
export function wireUpload(panel, page, { onUploaded }) {
  const state = panel.querySelector("#upload-state");
  const zone = panel.querySelector(".drop-zone");
  let busy = false;
  let followed = null;  // the dataset uploaded last, as the latest poll saw it

  const send = async (file, idempotencyKey) => {
    if (busy || !file) return;
    busy = true;
    followed = null;
    zone.classList.add("busy");
    const name = panel.querySelector("#upload-name").value.trim();
    const form = new FormData();
    form.append("file", file, file.name);
    if (name) form.append("name", name);
    state.innerHTML = `<p><span class="file">${esc(file.name)}</span> <span class="muted">${fmtNumber(file.size)} bytes</span><br>
      <progress max="100" value="0" data-testid="upload-progress" aria-label="Upload of ${esc(file.name)}"></progress>
      <span class="num" data-testid="upload-percent">0%</span></p><div id="upload-outcome"></div>`;
    const bar = state.querySelector("progress");
    const percent = state.querySelector("[data-testid=upload-percent]");
    const outcome = state.querySelector("#upload-outcome");
    try {
      const dataset = await upload("/v1/datasets", form, {
        headers: { "Idempotency-Key": idempotencyKey },
        onProgress: (sent, total) => {
          const share = Math.round((100 * sent) / (total || file.size || 1));
          bar.value = Math.min(100, share);
          percent.textContent = `${Math.min(100, share)}%`;
        },
      });
      followed = dataset;
      panel.querySelector("#upload-name").value = "";
      show();
      announce(`${dataset.name} uploaded; ingesting.`);
      onUploaded(dataset);
    } catch (error) {
      if (error instanceof ApiError) {
        outcome.innerHTML = problemView(error, "upload-error");
        announce(`Upload refused: ${error.message}`);
      } else if (error instanceof TypeError) {
        // The answer never came: the same key makes a second try return the first dataset, not a duplicate.
        outcome.innerHTML = problemView(error, "upload-error")
          + `<button type="button" class="secondary" data-testid="upload-retry">Try again</button>`;
        outcome.querySelector("[data-testid=upload-retry]").addEventListener("click", () => send(file, idempotencyKey));
      } else {
        state.innerHTML = "";
        page.fail(error);
      }
    } finally {
      busy = false;
      zone.classList.remove("busy");
    }
  };
  const start = (files) => {
    if (files?.length) send(files[0], newIdempotencyKey());
  };

  onFiles(panel, "input[type=file]", start);

  function show() {
    const d = followed;
    let what = "ingesting: checking every image…";
    if (d.status === "ready") {
      what = `${fmtNumber(d.num_images)} images in ${d.classes.length} classes. <a href="#/experiments/new/${esc(d.id)}"
        data-testid="upload-start-experiment">Start a search on it</a>`;
    } else if (d.status === "failed") {
      what = `${esc(d.detail || "ingestion failed")}${d.errors?.length ? ` (${d.errors.length} problems listed in its row)` : ""}`;
    }
    const outcome = state.querySelector("#upload-outcome");
    if (!outcome) return;
    outcome.innerHTML = `<p data-testid="upload-result" data-id="${esc(d.id)}"><b>${esc(d.name)}</b> ${badge(d.status, "upload-dataset-status")} ${what}</p>`;
  }

  return function follow(datasets) {
    const latest = followed && datasets.find((d) => d.id === followed.id);
    if (!latest || (latest.status === followed.status && latest.updated_at === followed.updated_at)) return;
    const settled = followed.status === "processing" && latest.status !== "processing";
    followed = latest;
    show();
    if (settled) announce(`Dataset ${latest.name} is ${latest.status}.`);
  };
}
