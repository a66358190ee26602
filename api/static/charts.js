// Inline SVG charts, written as strings: line charts, scatter with a highlighted front, parallel coordinates and
// the stage diagram of an architecture. Every chart is role="img" with a text label; numbers are also in tables.

export const esc = (value) => String(value ?? "").replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

export const PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d"];

export function fmtNumber(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(2)}G`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  if (Number.isInteger(value)) return String(value);
  return value.toPrecision(digits);
}

function linear(domain, range) {
  let [d0, d1] = domain;
  if (d0 === d1) { d0 -= 0.5; d1 += 0.5; }
  const f = (v) => range[0] + ((v - d0) / (d1 - d0)) * (range[1] - range[0]);
  f.ticks = (n = 5) => niceTicks(d0, d1, n);
  return f;
}

function logScale(domain, range) {
  const lo = Math.log10(Math.max(domain[0], 1e-12));
  const hi = Math.log10(Math.max(domain[1], 1e-12));
  const inner = linear([lo, hi === lo ? lo + 1 : hi], range);
  const f = (v) => inner(Math.log10(Math.max(v, 1e-12)));
  f.ticks = () => {
    const within = (t) => Math.log10(t) >= lo - 1e-9 && Math.log10(t) <= hi + 1e-9;
    const decades = [], steps = [];
    for (let p = Math.floor(lo); p <= Math.ceil(hi); p++) {
      decades.push(10 ** p);
      steps.push(10 ** p, 2 * 10 ** p, 5 * 10 ** p);
    }
    // Powers of ten when the range spans several; 1-2-5 steps inside a narrow one.
    const major = decades.filter(within);
    return major.length >= 3 ? major : steps.filter(within);
  };
  return f;
}

function niceTicks(lo, hi, n) {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toFixed(12));
  return out;
}

// 5% room on both sides, so points at the extremes are not drawn on the axes.
const padded = ([lo, hi]) => {
  const room = (hi - lo || Math.abs(hi) || 1) * 0.05;
  return [lo - room, hi + room];
};

const extent = (values) => {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length ? [Math.min(...finite), Math.max(...finite)] : [0, 1];
};

function frame({ width, height, label, testid, body }) {
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(label)}"
    data-testid="${esc(testid)}" preserveAspectRatio="xMidYMid meet"><title>${esc(label)}</title>${body}</svg>`;
}

// Tick labels: short and exact ("0.8", not "0.800"); large values keep the k/M suffixes.
const fmtTick = (v) => (Math.abs(v) >= 1e4 ? fmtNumber(v) : String(+v.toPrecision(4)));

function axes({ x, y, xTicks, yTicks, box, xLabel, yLabel, xFormat = fmtTick, yFormat = fmtTick }) {
  const parts = [`<g class="axis">`];
  for (const t of yTicks) {
    const py = y(t);
    parts.push(`<line x1="${box.left}" x2="${box.right}" y1="${py}" y2="${py}" class="grid"/>`,
      `<text x="${box.left - 6}" y="${py + 4}" text-anchor="end">${esc(yFormat(t))}</text>`);
  }
  for (const t of xTicks) {
    const px = x(t);
    parts.push(`<line x1="${px}" x2="${px}" y1="${box.bottom}" y2="${box.bottom + 4}"/>`,
      `<text x="${px}" y="${box.bottom + 17}" text-anchor="middle">${esc(xFormat(t))}</text>`);
  }
  parts.push(`<line x1="${box.left}" x2="${box.right}" y1="${box.bottom}" y2="${box.bottom}"/>`,
    `<line x1="${box.left}" x2="${box.left}" y1="${box.top}" y2="${box.bottom}"/>`,
    `<text x="${(box.left + box.right) / 2}" y="${box.bottom + 34}" text-anchor="middle" class="label">${esc(xLabel)}</text>`,
    `<text transform="translate(14 ${(box.top + box.bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">${esc(yLabel)}</text>`,
    `</g>`);
  return parts.join("");
}

const BOX = (width, height) => ({ left: 58, right: width - 16, top: 14, bottom: height - 42 });

/** Lines over x: series = [{name, points: [[x, y]], color?, step?, dots?}]. */
export function lineChart({ series, xLabel, yLabel, label, testid, width = 520, height = 260, yDomain, integerX = false }) {
  const box = BOX(width, height);
  const all = series.flatMap((s) => s.points);
  if (!all.length) return `<p class="empty" data-testid="${esc(testid)}-empty">No data yet.</p>`;
  const x = linear(extent(all.map((p) => p[0])), [box.left, box.right]);
  const y = linear(yDomain || extent(all.map((p) => p[1])), [box.bottom, box.top]);
  // Epochs and trial numbers are counts: no tick at 1.5.
  const xTicks = integerX ? x.ticks(6).filter(Number.isInteger) : x.ticks(6);
  const body = [axes({ x, y, xTicks, yTicks: y.ticks(5), box, xLabel, yLabel })];
  series.forEach((s, i) => {
    const color = s.color || PALETTE[i % PALETTE.length];
    let d = "";
    s.points.forEach(([px, py], j) => {
      if (j === 0) d += `M${x(px).toFixed(1)},${y(py).toFixed(1)}`;
      else if (s.step) d += `H${x(px).toFixed(1)}V${y(py).toFixed(1)}`;
      else d += `L${x(px).toFixed(1)},${y(py).toFixed(1)}`;
    });
    // One group per series, named, so a page (or a test) can tell the lines apart.
    body.push(`<g class="series" data-testid="series" data-series="${esc(s.name)}">`);
    if (s.line !== false) body.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5 3"' : ""}/>`);
    if (s.dots || s.points.length === 1) {
      for (const [px, py] of s.points) {
        body.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="3" fill="${color}"><title>${esc(s.name)}: ${esc(fmtNumber(px))}, ${esc(fmtNumber(py))}</title></circle>`);
      }
    }
    body.push("</g>");
  });
  const legend = series.map((s, i) => `<li data-series="${esc(s.name)}"><span class="swatch${s.dash ? " dashed" : ""}" style="${s.dash
    ? `border-color:${s.color || PALETTE[i % PALETTE.length]}` : `background:${s.color || PALETTE[i % PALETTE.length]}`}"></span>${esc(s.name)}</li>`).join("");
  return `<figure class="chart-box">${frame({ width, height, label, testid, body: body.join("") })}
    <figcaption><ul class="legend" data-testid="${esc(testid)}-legend">${legend}</ul></figcaption></figure>`;
}

/** Accuracy against a cost; `front` ids are drawn larger, in a second color and joined by a line. */
export function scatter({ points, front, xKey, xLabel, label, testid, log = false, width = 420, height = 280 }) {
  const box = BOX(width, height);
  const usable = points.filter((p) => Number.isFinite(p[xKey]) && Number.isFinite(p.val_accuracy) && (!log || p[xKey] > 0));
  if (!usable.length) return `<p class="empty" data-testid="${esc(testid)}-empty">No finished trials yet.</p>`;
  const [x0, x1] = extent(usable.map((p) => p[xKey]));
  const x = log ? logScale([x0 * 0.9, x1 * 1.1], [box.left, box.right]) : linear(padded([x0, x1]), [box.left, box.right]);
  const y = linear(padded(extent(usable.map((p) => p.val_accuracy))), [box.bottom, box.top]);
  const body = [axes({ x, y, xTicks: x.ticks(5), yTicks: y.ticks(5), box, xLabel, yLabel: "val accuracy" })];
  const onFront = usable.filter((p) => front.has(p.id));
  // Front points last, so they sit on top.
  for (const p of [...usable.filter((q) => !front.has(q.id)), ...onFront]) {
    const isFront = front.has(p.id);
    body.push(`<circle cx="${x(p[xKey]).toFixed(1)}" cy="${y(p.val_accuracy).toFixed(1)}" r="${isFront ? 5.5 : 3.5}"
      class="${isFront ? "pt front" : "pt"}" data-testid="${isFront ? "pareto-point" : "trial-point"}" data-trial="${esc(p.id)}"><title>#${p.number}: accuracy ${fmtNumber(p.val_accuracy)}, ${esc(xLabel)} ${fmtNumber(p[xKey])}${isFront ? " (Pareto front)" : ""}</title></circle>`);
  }
  return `<figure class="chart-box">${frame({ width, height, label, testid, body: body.join("") })}
    <figcaption><ul class="legend"><li><span class="swatch front"></span>Pareto front over accuracy, params and latency (${onFront.length})</li><li><span class="swatch"></span>other trials</li></ul></figcaption></figure>`;
}

/** One vertical axis per decision and one for accuracy; each finished trial is a polyline colored by accuracy. */
export function parallelCoordinates({ trials, label, testid, highlight, width = 900, height = 300 }) {
  const finished = trials.filter((t) => Number.isFinite(t.val_accuracy));
  if (!finished.length) return `<p class="empty" data-testid="${esc(testid)}-empty">No finished trials yet.</p>`;
  const keys = [...new Set(finished.flatMap((t) => Object.keys(t.decisions || {})))].sort();
  const dims = [...keys.map((k) => ({ key: k, get: (t) => t.decisions?.[k] })), { key: "val accuracy", get: (t) => t.val_accuracy }];
  const top = 28, bottom = height - 16, left = 40, right = width - 40;
  const step = dims.length > 1 ? (right - left) / (dims.length - 1) : 0;
  const scales = dims.map((dim, i) => {
    const values = finished.map(dim.get).filter((v) => v !== undefined && v !== null);
    const numeric = values.length && values.every((v) => typeof v === "number");
    if (numeric) {
      const s = linear(extent(values), [bottom, top]);
      const counts = values.every(Number.isInteger);  // num_stages, widths: no tick at 1.75
      const ticks = s.ticks(4).filter((t) => !counts || Number.isInteger(t));
      return { x: left + i * step, at: (v) => (typeof v === "number" ? s(v) : null), ticks: ticks.map((t) => [t, s(t)]) };
    }
    const cats = [...new Set(values.map(String))].sort();
    const at = (v) => (v === undefined || v === null ? null : bottom - ((cats.indexOf(String(v)) + 0.5) / cats.length) * (bottom - top));
    return { x: left + i * step, at, ticks: cats.map((c) => [c, at(c)]) };
  });
  const [a0, a1] = extent(finished.map((t) => t.val_accuracy));
  const color = (acc) => {
    const f = a1 > a0 ? (acc - a0) / (a1 - a0) : 1;
    return `hsl(${Math.round(20 + f * 190)} 75% ${Math.round(48 - f * 14)}%)`;
  };
  const lines = [...finished].sort((a, b) => a.val_accuracy - b.val_accuracy).map((t) => {
    const pts = dims.map((dim, i) => [scales[i].x, scales[i].at(dim.get(t))]).filter((p) => p[1] !== null);
    const selected = highlight?.has(t.id);
    return `<polyline points="${pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" ")}" fill="none"
      stroke="${selected ? "#111" : color(t.val_accuracy)}" stroke-width="${selected ? 3 : 1.4}" stroke-opacity="${selected ? 1 : 0.75}"><title>#${t.number}: ${fmtNumber(t.val_accuracy)}</title></polyline>`;
  });
  const axesSvg = dims.map((dim, i) => {
    const s = scales[i];
    const ticks = s.ticks.map(([v, py]) => `<text x="${s.x + 5}" y="${py + 4}">${esc(typeof v === "number" ? fmtNumber(v) : v)}</text>`).join("");
    return `<g class="axis"><line x1="${s.x}" x2="${s.x}" y1="${top}" y2="${bottom}"/>
      <text x="${s.x}" y="${top - 10}" text-anchor="middle" class="label">${esc(dim.key)}</text>${ticks}</g>`;
  }).join("");
  return `<figure class="chart-box wide">${frame({ width, height, label, testid, body: lines.join("") + axesSvg })}
    <figcaption>Each line is a finished trial; color runs from the lowest (orange) to the highest accuracy (blue).</figcaption></figure>`;
}

/** The architecture as boxes: stem, one box per stage (op, width, kernel, depth …), head. */
export function stageDiagram({ arch, label, testid }) {
  const spec = arch?.arch;
  if (!spec?.stages) return `<p class="empty">No architecture.</p>`;
  const boxW = 132, boxH = 118, gap = 26, pad = 10;
  const blocks = [
    { title: "stem", lines: [`width ${spec.stem_width}`], kind: "io" },
    ...spec.stages.map((s, i) => ({
      title: `stage ${i + 1}: ${s.op}`, kind: "stage",
      lines: [`width ${s.width}`, `kernel ${s.kernel}×${s.kernel}`, `depth ${s.depth}`,
        `expansion ${s.expansion}`, `${s.activation}${s.se ? " + SE" : ""}`, s.downsample ? "stride 2 ↓" : "stride 1"],
    })),
    { title: "head", lines: [`dropout ${fmtNumber(spec.head_dropout ?? 0, 2)}`, "pool → linear"], kind: "io" },
  ];
  const width = pad * 2 + blocks.length * boxW + (blocks.length - 1) * gap;
  const height = boxH + pad * 2;
  const body = blocks.map((b, i) => {
    const x = pad + i * (boxW + gap);
    const arrow = i < blocks.length - 1
      ? `<path d="M${x + boxW + 3},${pad + boxH / 2} h${gap - 8}" class="arrow" marker-end="url(#arrowhead)"/>` : "";
    const text = b.lines.map((line, j) => `<text x="${x + 10}" y="${pad + 42 + j * 13}">${esc(line)}</text>`).join("");
    return `<g class="stage ${b.kind}" data-testid="arch-${b.kind === "stage" ? "stage" : b.title}">
      <rect x="${x}" y="${pad}" width="${boxW}" height="${boxH}" rx="8"/>
      <text x="${x + 10}" y="${pad + 22}" class="label">${esc(b.title)}</text>${text}</g>${arrow}`;
  }).join("");
  const defs = `<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>`;
  return `<div class="scroll-x">${frame({ width, height, label, testid, body: defs + body })}</div>`;
}
