// Thin client of the /v1 routes: the Bearer key from session storage on every request; 401 means "ask again".

const KEY_NAME = "nas-api-key";

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY_NAME),
  set: (value) => sessionStorage.setItem(KEY_NAME, value.trim()),
  clear: () => sessionStorage.removeItem(KEY_NAME),
};

const authHeaders = () => ({ Authorization: `Bearer ${key.get() || ""}`, Accept: "application/json" });

// The error of a failed answer, from its status and body text (problem+json, or anything else).
function failure(status, text) {
  if (status === 401) return new Unauthorized("the API key was refused");
  let problem = null;
  try { problem = JSON.parse(text); } catch { /* not JSON: keep the status line */ }
  return new ApiError(status, problem);
}

export async function request(path, { method = "GET", body, raw = false, headers: extra = {} } = {}) {
  const headers = { ...authHeaders(), ...extra };
  // FormData goes as multipart: the browser writes its Content-Type, boundary included.
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined || form ? body : JSON.stringify(body) });
  if (!response.ok) throw failure(response.status, await response.text().catch(() => ""));
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

export const get = (path) => request(path);
export const post = (path, body, headers) => request(path, { method: "POST", body, headers });

// A key for the Idempotency-Key header: a retry with the same key and body gets the first answer, not a duplicate.
// getRandomValues, unlike randomUUID, also works on a page served over plain http from another host.
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dashboard-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// A multipart POST through XMLHttpRequest, the one browser API that reports upload progress:
// onProgress(sentBytes, totalBytes) as the body goes out. Errors are those of `request`; a lost connection is a
// TypeError, as fetch's.
export function upload(path, form, { onProgress, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries({ ...authHeaders(), ...headers })) xhr.setRequestHeader(name, value);
    if (onProgress) xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.lengthComputable ? event.total : null));
    xhr.addEventListener("load", () => {
      if (xhr.status < 200 || xhr.status >= 300) { reject(failure(xhr.status, xhr.responseText)); return; }
      try { resolve(xhr.status === 204 ? null : JSON.parse(xhr.responseText)); } catch (error) { reject(error); }
    });
    xhr.addEventListener("error", () => reject(new TypeError("the upload lost its connection")));
    xhr.addEventListener("abort", () => reject(new TypeError("the upload was aborted")));
    xhr.send(form);
  });
}

// Several files in one multipart body, each as a part named `field`.
export function postFiles(path, field, files) {
  const body = new FormData();
  for (const file of files) body.append(field, file, file.name);
  return request(path, { method: "POST", body });
}

// Every page of a list route, `limit` rows at a time (the API caps pages at 500): the first page alone, so the
// caller can paint it, then the rest at once now that the total is known.
export async function getAll(path, { limit = 500, offset = 0, onPage } = {}) {
  const sep = path.includes("?") ? "&" : "?";
  const pageAt = (start) => get(`${path}${sep}limit=${limit}&offset=${start}`);
  const first = await pageAt(offset);
  const rows = [...first.data];
  if (onPage) onPage(rows, first.total);
  const starts = [];
  for (let start = offset + limit; first.data.length === limit && start < first.total; start += limit) starts.push(start);
  for (const page of await Promise.all(starts.map(pageAt))) rows.push(...page.data);
  if (starts.length && onPage) onPage(rows, first.total);
  return { data: rows, total: first.total };
}

// Downloads need the Bearer header, so a plain link cannot do: fetch, then hand the bytes to the browser as a blob.
export async function download(path, filename) {
  const response = await request(path, { raw: true });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
