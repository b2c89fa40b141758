// Uploads, the way a script makes them: hash the file, reserve it with createContentUpload
// (name, length, sha256, the asset, tags), then PUT the bytes to the signed URL. The server
// checks length and digest, so a file damaged on the way is refused, not stored.

import { ApiError, CREATE_UPLOAD, graphql, transferError } from "./api.js";
import { sha256Hex } from "./hash.js";
import { el, formatBytes } from "./format.js";

function putFile(url, method, file, onProgress) {
  return new Promise((resolve, reject) => {
    // XMLHttpRequest, because fetch reports no upload progress.
    const request = new XMLHttpRequest();
    request.open(method, url);
    request.upload.addEventListener("progress", (event) => onProgress(event.loaded));
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(transferError(request.status, request.responseText));
    });
    request.addEventListener("error", () => reject(new ApiError("The connection failed during the upload.")));
    request.addEventListener("abort", () => reject(new ApiError("The upload was cancelled.")));
    request.send(file);
  });
}

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
      row.step("reserving…", 0);
      const input = {
        name: file.name,
        length: file.size,
        sha256,
        associations: [{ type: "asset", id: assetId }],
        tags,
      };
      if (file.type) input.contentType = file.type;
      const { createContentUpload: reserved } = await graphql(CREATE_UPLOAD, { input });
      await putFile(reserved.uploadUrl, reserved.method, file, (sent) =>
        row.step(`uploading… ${Math.floor((100 * sent) / (file.size || 1))}%`, sent),
      );
      row.step(`uploaded, sha256 ${sha256}`, file.size || 1);
      row.node.classList.add("done");
      onUploaded(reserved.id);
    } catch (error) {
      row.fail(error.message);
    }
  }
}
