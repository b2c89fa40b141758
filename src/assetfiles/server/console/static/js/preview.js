// Previews from a signed URL, without downloading the file first and without ever loading a large
// file whole: text is read with one Range request for its first bytes, PDFs through pdf.js with
// Range requests for the pages shown, images only below a size, audio and video streamed by the
// browser. Contents are hostile input: text is shown as text, SVG only through <img> (where its
// scripts never run).

import { el, formatBytes } from "./format.js";

/** Bytes of a text file read for its preview. */
export const TEXT_PREVIEW_BYTES = 64 * 1024;
export const TEXT_PREVIEW_LINES = 200;
export const CSV_PREVIEW_ROWS = 100;
/** Images larger than this are not previewed (an <img> loads the whole file). */
export const IMAGE_PREVIEW_LIMIT = 25 * 1024 * 1024;

const TEXT_TYPES = new Set([
  "application/json",
  "application/x-ndjson",
  "application/xml",
  "application/yaml",
  "application/x-yaml",
  "application/toml",
  "application/csv",
]);
const TEXT_NAMES = /\.(txt|log|csv|tsv|json|ndjson|jsonl|xml|ya?ml|toml|ini|conf|md)$/i;

export function previewKind(file) {
  const type = file.contentType.split(";")[0].trim().toLowerCase();
  if (type.startsWith("image/")) return "image";
  if (type === "application/pdf") return "pdf";
  if (type.startsWith("audio/")) return "audio";
  if (type.startsWith("video/")) return "video";
  if (type === "text/csv" || type === "application/csv" || /\.csv$/i.test(file.name)) return "csv";
  if (type.startsWith("text/") || TEXT_TYPES.has(type) || type.endsWith("+json")) return "text";
  if (type === "application/octet-stream" && TEXT_NAMES.test(file.name)) return "text";
  return null;
}

function noPreview(reason) {
  return el("p", { class: "no-preview" }, reason);
}

/** Renders the preview of `file` (its signed `url`) into `target`, replacing what was there. */
export async function showPreview(target, file, url) {
  const kind = previewKind(file);
  target.replaceChildren(el("p", { class: "muted" }, "Loading preview…"));
  try {
    target.replaceChildren(await render(kind, file, url));
  } catch (error) {
    target.replaceChildren(noPreview(`The preview could not be shown: ${error.message}`));
  }
}

async function render(kind, file, url) {
  switch (kind) {
    case "image":
      if (file.length > IMAGE_PREVIEW_LIMIT) {
        return noPreview(`No preview: this image is ${formatBytes(file.length)}. Download it to view it.`);
      }
      return el("img", { src: url, alt: `Preview of ${file.name}`, class: "preview-image" });
    case "audio":
    case "video":
      return mediaPreview(kind, file, url);
    case "pdf":
      return pdfPreview(url);
    case "csv":
      return csvPreview(file, url);
    case "text":
      return textPreview(file, url);
    default:
      return noPreview(`No preview for ${file.contentType}. Download it to open it.`);
  }
}

function mediaPreview(kind, file, url) {
  const player = document.createElement(kind);
  if (!player.canPlayType(file.contentType)) {
    return noPreview(`This browser cannot play ${file.contentType}. Download it to open it.`);
  }
  player.controls = true;
  player.preload = "metadata";
  player.src = url;
  player.setAttribute("aria-label", `Preview of ${file.name}`);
  return player;
}

/** The first bytes of a file as text, and whether that is all of it. */
async function firstText(file, url) {
  const response = await fetch(url, {
    headers: { Range: `bytes=0-${TEXT_PREVIEW_BYTES - 1}` },
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  // A server that ignores Range sends everything: read no more than the preview needs.
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  while (received < TEXT_PREVIEW_BYTES) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
  }
  reader.cancel().catch(() => {});
  const bytes = new Uint8Array(Math.min(received, TEXT_PREVIEW_BYTES));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.length;
    if (at >= bytes.length) break;
  }
  const complete = bytes.length >= file.length;
  let text = new TextDecoder("utf-8", { fatal: false }).decode(bytes, { stream: !complete });
  if (!complete) text = text.slice(0, Math.max(0, text.lastIndexOf("\n")));  // whole lines only
  return { text, complete };
}

function shownNote(file, shown, complete) {
  if (complete) return null;
  return el("p", { class: "muted" }, `The first ${shown} of ${formatBytes(file.length)}; download for the rest.`);
}

async function textPreview(file, url) {
  const { text, complete } = await firstText(file, url);
  let shown = text.split("\n").slice(0, TEXT_PREVIEW_LINES).join("\n");
  if (complete && /json/i.test(file.contentType)) {
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2).split("\n").slice(0, TEXT_PREVIEW_LINES).join("\n");
    } catch {
      // not valid JSON: shown as it is
    }
  }
  const lines = shown.split("\n").length;
  return el(
    "div",
    {},
    el("pre", { class: "preview-text", tabindex: 0, "aria-label": `First lines of ${file.name}` }, shown),
    shownNote(file, `${lines} lines`, complete && lines < TEXT_PREVIEW_LINES),
  );
}

/** RFC 4180 rows: quoted fields may hold commas, quotes ("") and line breaks. */
export function parseCsv(text, maxRows) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i += 1) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"' && field === "") quoted = true;
    else if (char === ",") {
      row.push(field);
      field = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += char;
  }
  if ((field || row.length) && rows.length < maxRows) rows.push([...row, field]);
  return rows;
}

async function csvPreview(file, url) {
  const { text, complete } = await firstText(file, url);
  const rows = parseCsv(text, CSV_PREVIEW_ROWS + 1);
  if (!rows.length) return noPreview("This file is empty.");
  const [header, ...body] = rows;
  const shownRows = body.slice(0, CSV_PREVIEW_ROWS);
  const table = el(
    "table",
    { class: "preview-csv" },
    el("caption", {}, `First rows of ${file.name}`),
    el("thead", {}, el("tr", {}, header.map((cell) => el("th", { scope: "col" }, cell)))),
    el("tbody", {}, shownRows.map((cells) => el("tr", {}, cells.map((cell) => el("td", {}, cell))))),
  );
  const all = complete && body.length <= CSV_PREVIEW_ROWS;
  return el(
    "div",
    {},
    el("div", { class: "table-scroll", tabindex: 0 }, table),
    shownNote(file, `${shownRows.length} rows`, all),
  );
}

let pdfjs = null;

async function pdfPreview(url) {
  if (!pdfjs) {
    pdfjs = await import("../vendor/pdfjs/pdf.min.mjs");
    pdfjs.GlobalWorkerOptions.workerSrc = new URL("../vendor/pdfjs/pdf.worker.min.mjs", import.meta.url).href;
  }
  // Range requests for what page 1 needs; no eval (the CSP forbids it); no fetches of fonts or
  // maps from elsewhere.
  const task = pdfjs.getDocument({
    url,
    disableAutoFetch: true,
    rangeChunkSize: 256 * 1024,
    isEvalSupported: false,
    withCredentials: false,
    useSystemFonts: true,
  });
  const pdf = await task.promise;
  const page = await pdf.getPage(1);
  const viewport = page.getViewport({ scale: 1 });
  const scale = Math.min(2, 720 / viewport.width);
  const scaled = page.getViewport({ scale });
  const canvas = el("canvas", {
    class: "preview-pdf",
    width: Math.floor(scaled.width),
    height: Math.floor(scaled.height),
    role: "img",
    "aria-label": `Page 1 of the PDF`,
  });
  await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport: scaled }).promise;
  return el(
    "div",
    {},
    canvas,
    el("p", { class: "muted pdf-pages" }, `Page 1 of ${pdf.numPages}`),
  );
}
