// Uploads through tus (/files/), so that a dropped connection or a reloaded page costs at most
// the chunk in flight: hash the file (its sha256 is declared, and the server checks the whole
// against it), then send it in chunks with tus-js-client (vendored), which retries, asks the
// server where it stands, and remembers unfinished uploads in localStorage: choosing the same file
// for the same asset again after a reload resumes it.

import { ApiError, session } from "./api.js";
import { sha256Hex } from "./hash.js";
import { el, formatBytes } from "./format.js";

/** Bytes per PATCH: the most a dropped connection costs. */
const CHUNK_BYTES = 8 * 1024 * 1024;
/** Waits (ms) between tries after a failure; tus-js-client asks the server's offset before each. */
const RETRY_DELAYS = [0, 1000, 2000, 4000, 8000, 15000, 30000, 30000, 30000];

/** One file's row in the upload list: its name, what is happening, and a progress bar. */
class UploadRow {
  constructor(list, file) {
    this.status = el("span", { class: "upload-status" }, "waiting");
    this.bar = el("progress", { max: file.size || 1, value: 0, "aria-label": `Progress of ${file.name}` });
    this.node = el(
      "li",
      { class: "upload" },
      el("span", { class: "upload-name" }, file.name),
      el("span", { class: "muted" }, formatBytes(file.size)),
      this.bar,
      this.status,
    );
    list.append(this.node);
  }

  step(text, value = null) {
    this.status.textContent = text;
    if (value !== null) this.bar.value = value;
  }

  fail(message) {
    this.node.classList.add("failed");
    this.status.textContent = `failed: ${message}`;
  }
}

/** The server's words for a refusal: tus answers in plain text, with the request id after them. */
function refusal(error) {
  const response = error && error.originalResponse;
  if (!response) return new ApiError("The connection failed during the upload, and retries did not get through.");
  const text = (response.getBody() || "").trim();
  return new ApiError(text || `The upload was refused (HTTP ${response.getStatus()}).`, {
    status: response.getStatus(),
  });
}

function sendFile(file, metadata, resumeKey, onProgress) {
  return new Promise((resolve, reject) => {
    const upload = new window.tus.Upload(file, {
      endpoint: "/files/",
      headers: { Authorization: `Automation ${session.token()}` },
      metadata,
      chunkSize: CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
      removeFingerprintOnSuccess: true,
      // the same bytes for the same asset, whatever the file's date: resumable after a reload
      fingerprint: async () => resumeKey,
      onProgress: (sent) => onProgress(sent),
      onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader("Upload-Content-Id")),
      onError: (error) => reject(refusal(error)),
    });
    upload
      .findPreviousUploads()
      .then((previous) => {
        if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      })
      .catch(reject);
  });
}

/**
 * Uploads `files` to the asset one after another, each with its own row in `list`; `onUploaded`
 * runs after each file the server stored. Resolves when all have finished or failed.
 */
export async function uploadFiles({ files, assetId, tags, list, onUploaded }) {
  const rows = files.map((file) => new UploadRow(list, file));
  for (const [index, file] of files.entries()) {
    const row = rows[index];
    try {
      row.step("computing sha256…");
      const sha256 = await sha256Hex(file, (done) => row.step(`computing sha256… ${formatBytes(done)}`));
      row.step("uploading…", 0);
      const metadata = { filename: file.name, asset: assetId, sha256 };
      if (file.type) metadata.filetype = file.type;
      if (tags.length) metadata.tags = JSON.stringify(Object.fromEntries(tags.map((t) => [t.name, t.value])));
      const resumeKey = ["assetfiles", location.origin, assetId, sha256, file.size, file.name].join("|");
      const contentId = await sendFile(file, metadata, resumeKey, (sent) =>
        row.step(`uploading… ${Math.floor((100 * sent) / (file.size || 1))}%`, sent),
      );
      row.step(`uploaded, sha256 ${sha256}`, file.size || 1);
      row.node.classList.add("done");
      onUploaded(contentId);
    } catch (error) {
      row.fail(error.message);
    }
  }
}
