// SHA-256 of a file in the browser, so that the server checks the bytes it receives against the
// digest the upload was reserved with. Web Crypto hashes small files natively in one call; it has
// no incremental interface, so large files are streamed through @noble/hashes (vendored) in
// chunks and never held whole in memory. Web Crypto is also missing outside secure contexts
// (plain http on a LAN address), where every file takes the streamed path.

import { sha256 } from "../vendor/noble-hashes/sha2.js";

/** Files up to this size are read whole and hashed by Web Crypto. */
export const WHOLE_FILE_LIMIT = 32 * 1024 * 1024;

function hex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The lowercase hex SHA-256 of `file`; `onProgress(bytesHashed)` is called as it goes. */
export async function sha256Hex(file, onProgress = () => {}) {
  if (globalThis.crypto && crypto.subtle && file.size <= WHOLE_FILE_LIMIT) {
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    onProgress(file.size);
    return hex(new Uint8Array(digest));
  }
  const hasher = sha256.create();
  const reader = file.stream().getReader();
  let done = 0;
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    hasher.update(value);
    done += value.length;
    onProgress(done);
  }
  return hex(hasher.digest());
}
