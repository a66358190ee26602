// Final models: the list, and one model's test metrics, confusion matrix, artifact downloads and a drop zone that
// classifies images with it.

import { ApiError, download, get, getAll, postFiles } from "./api.js";
import { announce, badge, esc, fmtNumber, ms, patch, onFiles, pct, poll, problemView, when } from "./ui.js";

const ACTIVE_MODEL = new Set(["queued", "running"]);
const FILENAMES = {
  onnx: "model.onnx", onnx_int8: "model.int8.onnx", pt2: "model.pt2", savedmodel: "model.savedmodel.zip",
  tflite: "model.tflite", tflite_int8: "model.int8.tflite", preprocessing: "preprocessing.json", card_md: "card.md",
  card: "card.json",
};

export async function renderModels(root, page) {
  root.innerHTML = `<section aria-labelledby="models-title"><h2 id="models-title">Models</h2>
    <div id="models-body" data-testid="models"><p class="muted">Loading…</p></div></section>`;
  document.title = "Models · nas-service";
  const body = root.querySelector("#models-body");
  await poll(page, async () => {
    const { data } = await getAll("/v1/models");
    if (!page.current()) return false;
    patch(body, JSON.stringify(data.map((m) => [m.id, m.status, m.updated_at])), () => data.length
      ? `<div class="scroll-x"><table class="data"><caption class="visually-hidden">Final models, newest first</caption>
        <thead><tr><th scope="col">Model</th><th scope="col">Status</th><th scope="col">Test accuracy</th><th scope="col">Params</th>
        <th scope="col">Latency</th><th scope="col">Experiment</th><th scope="col">Created</th></tr></thead><tbody>
        ${data.map((m) => `<tr data-testid="model-row"><th scope="row"><a href="#/models/${esc(m.id)}" data-testid="model-link">${esc(m.id.slice(0, 12))}</a></th>
          <td>${badge(m.status, "model-status")}</td><td class="num">${pct(m.test_accuracy)}</td><td class="num">${fmtNumber(m.params)}</td>
          <td class="num">${ms(m.latency_ms)}</td><td><a href="#/experiments/${esc(m.experiment_id)}">${esc(m.experiment_id.slice(0, 12))}</a></td>
          <td>${esc(when(m.created_at))}</td></tr>`).join("")}</tbody></table></div>`
      : `<p class="empty">No final models yet: they are trained when a search ends (or with <code>nas models create</code>).</p>`);
    return data.some((m) => ACTIVE_MODEL.has(m.status));
  });
}

export async function renderModel(root, page, modelId) {
  const path = `/v1/models/${encodeURIComponent(modelId)}`;
  root.innerHTML = `<p><a href="#/models">← Models</a></p><section class="card" aria-labelledby="model-title" data-testid="model-page">
    <div id="model-body"><p class="muted">Loading…</p></div></section>`;
  const body = root.querySelector("#model-body");
  body.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-format]");
    if (!button) return;
    const format = button.dataset.format;
    button.disabled = true;
    try {
      // Streamed by the API: a fetch carrying the Bearer header cannot follow S3's cross-origin redirect.
      await download(`${path}/artifacts/${format}?redirect=false`, FILENAMES[format] || format);
      announce(`${FILENAMES[format] || format} downloaded.`);
    } catch (error) {
      page.fail(error);
    } finally {
      button.disabled = false;
    }
  });
  tryIt(body, page, path);
  await poll(page, async () => {
    const model = await get(path);
    if (!page.current()) return false;
    document.title = `Model ${model.id.slice(0, 12)} · nas-service`;
    patch(body, JSON.stringify([model.status, model.updated_at]), () => modelView(model));
    return ACTIVE_MODEL.has(model.status);
  });
}

function modelView(m) {
  const classes = (m.per_class || []).map((c) => c.name);
  const facts = `<dl class="facts">
    <div><dt>Test accuracy</dt><dd data-testid="model-accuracy">${pct(m.test_accuracy)}</dd></div>
    <div><dt>Test images</dt><dd>${m.test_images ?? "–"}</dd></div>
    <div><dt>Params</dt><dd>${fmtNumber(m.params)}</dd></div>
    <div><dt>FLOPs</dt><dd>${fmtNumber(m.flops)}</dd></div>
    <div><dt>Latency (onnxruntime, CPU)</dt><dd>${ms(m.latency_ms)}</dd></div>
    <div><dt>Epochs</dt><dd>${m.epochs}</dd></div>
    <div><dt>Experiment</dt><dd><a href="#/experiments/${esc(m.experiment_id)}">${esc(m.experiment_id)}</a></dd></div>
    <div><dt>Finished</dt><dd>${esc(when(m.finished_at))}</dd></div></dl>`;
  const perClass = m.per_class?.length ? `<h3>Per class</h3><table class="data compact"><thead><tr><th scope="col">Class</th>
    <th scope="col">Precision</th><th scope="col">Recall</th><th scope="col">Support</th></tr></thead><tbody>
    ${m.per_class.map((c) => `<tr><th scope="row">${esc(c.name)}</th><td class="num">${pct(c.precision)}</td><td class="num">${pct(c.recall)}</td><td class="num">${c.support}</td></tr>`).join("")}
    </tbody></table>` : "";
  const artifacts = m.artifacts.length ? `<h3>Artifacts</h3><ul class="plain artifacts">${m.artifacts.map((a) =>
    `<li><button type="button" data-format="${esc(a.format)}" data-testid="download-${esc(a.format)}">Download ${esc(FILENAMES[a.format] || a.format)}</button>
     <span class="muted">${fmtNumber(a.size)} bytes · sha256 <code>${esc(a.sha256.slice(0, 16))}…</code></span></li>`).join("")}</ul>` : "";
  return `<div class="title-row"><h2 id="model-title">Model ${esc(m.id.slice(0, 12))}</h2>${badge(m.status, "model-status")}</div>
    ${m.detail ? `<p class="muted">${esc(m.detail)}</p>` : ""}${facts}${artifacts}${m.status === "ready" ? dropZone() : ""}
    <div class="grid-2"><div>${confusion(m.confusion_matrix, classes)}</div><div>${perClass}</div></div>`;
}

// ---------------------------------------------------------------------------------------------------- try it

const dropZone = () => `<section class="try" aria-labelledby="try-title"><h3 id="try-title">Try it</h3>
  <div class="drop-zone" data-testid="drop-zone"><p>Drop images here, or <label class="file-pick">choose files<input
    type="file" accept="image/*" multiple data-testid="predict-input"></label></p>
  <p class="muted">Any size and colour mode (PNG, JPEG, GIF, BMP, TIFF, WebP); the model runs on the server and lists
    each image's five most probable classes.</p></div>
  <div id="predict-result" data-testid="predict-result"></div></section>`;

// Files dropped on the zone or chosen with its input go to POST …/predict in one request; the answer (or what was
// wrong with the images) shows under the zone, each image beside its classes.
function tryIt(body, page, path) {
  let previews = [];
  const classify = async (fileList) => {
    const files = [...fileList];
    const result = body.querySelector("#predict-result");
    if (!files.length || !result) return;
    previews.forEach((url) => URL.revokeObjectURL(url));
    previews = files.map((file) => URL.createObjectURL(file));
    const shown = previews;
    result.innerHTML = `<p class="muted">Classifying ${files.length} image${files.length === 1 ? "" : "s"}…</p>`;
    try {
      const answer = await postFiles(`${path}/predict`, "images", files);
      if (shown !== previews) return; // a newer drop took over
      result.innerHTML = predictionView(answer, files, shown);
      announce(`${files.length} image${files.length === 1 ? "" : "s"} classified.`);
    } catch (error) {
      if (!(error instanceof ApiError)) { page.fail(error); result.innerHTML = ""; return; }
      result.innerHTML = problemView(error, "predict-error");
      announce(`Not classified: ${error.message}`);
    }
  };
  onFiles(body, "input[data-testid=predict-input]", classify);
}

function predictionView(answer, files, previews) {
  const count = answer.data.length;
  return `<p class="muted" data-testid="predict-latency">${count} image${count === 1 ? "" : "s"} · ${ms(answer.latency_ms)} in onnxruntime</p>
    <ul class="plain predictions">${answer.data.map((entry, i) => `<li data-testid="prediction">
      <img src="${esc(previews[i])}" alt="">
      <div><p class="file">${esc(entry.filename ?? files[i].name)}</p><ol class="ranks">${entry.top.map((item) => `<li>
        <span data-testid="predicted-class">${esc(item.class)}</span>
        <meter min="0" max="1" value="${item.probability}"></meter>
        <span class="num" data-testid="predicted-probability">${pct(item.probability)}</span></li>`).join("")}</ol></div>
    </li>`).join("")}</ul>`;
}

// A heat-map table: the cell's shade is its share of the true class's row; text flips to white on dark cells.
function confusion(matrix, classes) {
  if (!matrix?.length) return "";
  const name = (i) => esc(classes[i] ?? `class ${i}`);
  const rows = matrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return `<tr><th scope="row">${name(i)}</th>${row.map((count) => {
      const share = count / total;
      const light = Math.round(97 - share * 62);
      return `<td class="num heat" style="background:hsl(215 70% ${light}%);color:${light < 60 ? "#fff" : "#111"}">${count}</td>`;
    }).join("")}</tr>`;
  }).join("");
  return `<h3>Confusion matrix</h3><div class="scroll-x"><table class="data confusion" data-testid="confusion-matrix">
    <caption>Rows: true class · columns: predicted class</caption>
    <thead><tr><th scope="col"><span class="visually-hidden">True class</span></th>${matrix.map((_, i) => `<th scope="col">${name(i)}</th>`).join("")}</tr></thead>
    <tbody>${rows}</tbody></table></div>`;
}
