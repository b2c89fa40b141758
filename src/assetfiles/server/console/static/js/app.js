// The console: sign in, assets, and an asset's files (filters, sort, pages, details with a preview,
// upload, download, tags, delete). Views are chosen by the URL fragment (#/ and #/asset/<id>),
// which never holds the token.

import {
  ApiError,
  ASSET,
  ASSETS,
  CURRENT_TOKEN,
  DELETE,
  FILES,
  SET_TAGS,
  graphql,
  session,
  signedUrl,
} from "./api.js";
import {
  creatorText,
  viaText,
  devicesOf,
  el,
  formatBytes,
  formatCount,
  parseTagList,
  timeElement,
} from "./format.js";
import { showPreview } from "./preview.js";
import { uploadFiles } from "./upload.js";

const ASSETS_PER_PAGE = 20;
const $ = (id) => document.getElementById(id);

const state = {
  me: null, // { name, organizationId, permissions, canWrite }
  asset: null,
  sources: [],
  offset: 0,
  files: [],
  selected: null,
  listing: 0, // guards against a slow answer overwriting a newer one
};

// ---------------------------------------------------------------- messages

function showError(error) {
  const box = $("alert");
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

function clearError() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

/** Runs an action; its failure is shown in words, and a rejected token returns to sign in. */
async function attempt(action) {
  try {
    clearError();
    return await action();
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") {
      signOut("Your token was not accepted (expired, revoked or mistyped). Sign in again.");
      return undefined;
    }
    showError(error);
    return undefined;
  }
}

// ---------------------------------------------------------------- sign in and out

function show(view) {
  for (const id of ["sign-in", "assets", "asset"]) $(id).hidden = id !== view;
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  await attempt(async () => {
    const data = await graphql(CURRENT_TOKEN, {}, token);
    session.remember(token, $("keep").checked);
    $("token").value = "";
    state.me = data.currentToken;
    await route();
  });
}

function signOut(message) {
  session.forget();
  state.me = null;
  $("who").textContent = "";
  $("sign-out").hidden = true;
  show("sign-in");
  if (typeof message === "string") showError(message);
  else clearError();
  $("token").focus();
}

function showSignedIn() {
  const me = state.me;
  const rights = me.canWrite ? "read and write" : "read only";
  $("who").textContent = `${me.name} · ${me.organizationId} · ${rights}`;
  $("sign-out").hidden = false;
  document.body.classList.toggle("read-only", !me.canWrite);
}

// ---------------------------------------------------------------- pager

function pager(nav, { offset, limit, total, onPage, label }) {
  const pages = Math.max(1, Math.ceil(total / limit));
  const current = Math.floor(offset / limit) + 1;
  nav.replaceChildren(
    el("button", {
      type: "button",
      class: "secondary",
      disabled: current <= 1,
      onclick: () => onPage(offset - limit),
    }, "Previous"),
    el("span", { "aria-live": "polite" }, `${label} ${formatCount(current)} of ${formatCount(pages)}`),
    el("button", {
      type: "button",
      class: "secondary",
      disabled: current >= pages,
      onclick: () => onPage(offset + limit),
    }, "Next"),
  );
}

// ---------------------------------------------------------------- assets

async function showAssets(text, offset) {
  show("assets");
  document.title = "Assets · assetfiles console";
  $("asset-text").value = text;
  const data = await graphql(ASSETS, { text: text || null, limit: ASSETS_PER_PAGE, offset });
  const total = data.assetsCount;
  $("assets-count").textContent = total === 1 ? "1 asset" : `${formatCount(total)} assets`;
  $("asset-list").replaceChildren(
    ...data.assets.map((asset) => {
      const devices = devicesOf(asset);
      return el(
        "li",
        { class: "card asset-card" },
        el("h2", {}, el("a", { href: `#/asset/${encodeURIComponent(asset.id)}` }, asset.name)),
        el("p", { class: "muted" }, asset.id),
        asset.description ? el("p", {}, asset.description) : null,
        el(
          "p",
          { class: "devices" },
          devices.length ? `Devices: ${devices.map((d) => `${d.pid}/${d.did}`).join(", ")}` : "No devices",
        ),
      );
    }),
  );
  pager($("assets-pager"), {
    offset,
    limit: ASSETS_PER_PAGE,
    total,
    label: "Page",
    onPage: (next) => navigate(assetsHash(text, next)),
  });
}

function assetsHash(text, offset) {
  const params = new URLSearchParams();
  if (text) params.set("q", text);
  if (offset) params.set("offset", String(offset));
  const query = params.toString();
  return query ? `#/?${query}` : "#/";
}

// ---------------------------------------------------------------- an asset's files

async function showAsset(id) {
  show("asset");
  const data = await graphql(ASSET, { id });
  if (!data.asset) {
    $("asset-title").textContent = "Asset not found";
    $("asset-description").textContent = `No asset ${id} is visible to this token.`;
    $("file-filters").hidden = true;
    $("upload").hidden = true;
    $("files").hidden = true;
    return;
  }
  const asset = data.asset;
  state.asset = asset;
  state.offset = 0;
  state.selected = null;
  document.title = `${asset.name} · assetfiles console`;
  $("asset-title").textContent = asset.name;
  $("asset-description").textContent = [asset.id, asset.description].filter(Boolean).join(" · ");
  $("file-filters").hidden = false;
  $("files").hidden = false;
  $("details").hidden = true;
  $("upload").hidden = !state.me.canWrite;
  $("upload-list").replaceChildren();
  state.sources = [
    { label: "Users and API", device: null },
    ...devicesOf(asset).map((device) => ({ label: `Device ${device.pid}/${device.did}`, device })),
  ];
  $("source").replaceChildren(
    ...state.sources.map((source, index) => el("option", { value: index }, source.label)),
  );
  await listFiles();
}

function currentSource() {
  return state.sources[Number($("source").value) || 0];
}

function filtersFromForm() {
  const filters = {
    association: { type: "asset", id: state.asset.id },
    orderBy: $("order-by").value,
    sort: $("sort").value,
  };
  const types = $("filter-types").value.split(",").map((t) => t.trim()).filter(Boolean);
  if (types.length) filters.contentTypes = types;
  const name = $("filter-name").value.trim();
  if (name) filters.name = name.includes("*") || name.includes("?") ? name : `*${name}*`;
  let tags;
  try {
    tags = parseTagList($("filter-tags").value, { valuesRequired: false });
  } catch (error) {
    throw new ApiError(`Tags filter: ${error.message}`);
  }
  if (tags.length) filters.tags = tags;
  const since = $("filter-since").value;
  if (since) filters.modifiedSince = new Date(since).toISOString();
  return filters;
}

async function listFiles() {
  const ticket = ++state.listing;
  const source = currentSource();
  // a device's files are the device's own: people upload to the asset, not as the device
  $("upload").hidden = !state.me.canWrite || Boolean(source.device);
  const limit = Number($("page-size").value);
  let data;
  try {
    const variables = {
      filters: filtersFromForm(),
      pagination: { limit, offset: state.offset },
      devices: source.device ? [{ product_id: source.device.pid, device_id: source.device.did }] : null,
    };
    data = await graphql(FILES, variables);
  } catch (error) {
    if (ticket === state.listing) {
      // rows under an error would look like the answer to the filter that failed
      state.files = [];
      $("files").tBodies[0].replaceChildren();
      $("files-pager").replaceChildren();
      $("files-count").textContent = "No files shown: the filters above could not be applied.";
    }
    throw error;
  }
  if (ticket !== state.listing) return; // a newer listing is on its way
  const { assetContents: files, totalCount } = data.assetContents;
  state.files = files;
  renderFiles(files, source);
  const first = totalCount ? state.offset + 1 : 0;
  const last = state.offset + files.length;
  $("files-count").textContent = totalCount
    ? `Files ${formatCount(first)}–${formatCount(last)} of ${formatCount(totalCount)}`
    : "No files match.";
  pager($("files-pager"), {
    offset: state.offset,
    limit,
    total: totalCount,
    label: "Page",
    onPage: (next) => {
      state.offset = Math.max(0, next);
      attempt(listFiles);
    },
  });
}

function tagChips(tags) {
  return el("ul", { class: "tags" }, tags.map((tag) => el("li", {}, tag.value ? `${tag.name}=${tag.value}` : tag.name)));
}

function renderFiles(files, source) {
  const canWrite = state.me.canWrite;
  const rows = files.map((file) =>
    el(
      "tr",
      { "data-id": file.id },
      el(
        "td",
        { "data-label": "Name" },
        el("button", { type: "button", class: "link", onclick: () => attempt(() => openDetails(file, source)) }, file.name),
      ),
      el("td", { "data-label": "Type" }, file.contentType),
      el("td", { "data-label": "Size", class: "num", title: `${formatCount(file.length)} bytes` }, formatBytes(file.length)),
      el("td", { "data-label": "Modified" }, timeElement(file.lastModified)),
      el("td", { "data-label": "Tags" }, tagChips(file.tags)),
      el("td", { "data-label": "Actions", class: "actions" }, fileActions(file, source, canWrite)),
    ),
  );
  $("files").tBodies[0].replaceChildren(...rows);
}

function fileActions(file, source, canWrite) {
  return [
    el("button", {
      type: "button",
      class: "secondary",
      "aria-label": `Download ${file.name}`,
      onclick: () => attempt(() => download(file, source)),
    }, "Download"),
    canWrite
      ? el("button", {
          type: "button",
          class: "secondary",
          "aria-label": `Edit tags of ${file.name}`,
          onclick: () => editTags(file),
        }, "Tags")
      : null,
    canWrite
      ? el("button", {
          type: "button",
          class: "danger",
          "aria-label": `Delete ${file.name}`,
          onclick: () => confirmDelete(file),
        }, "Delete")
      : null,
  ];
}

async function download(file, source) {
  const { url } = await signedUrl(file, source);
  // The signed URL answers with Content-Disposition: attachment; no token goes with it.
  const link = el("a", { href: url, download: file.name, rel: "noreferrer", hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}

// ---------------------------------------------------------------- details and preview

async function openDetails(file, source) {
  state.selected = file;
  const panel = $("details");
  const sha = el("dd", {}, el("button", {
    type: "button",
    class: "secondary",
    onclick: () => attempt(async () => {
      const signed = await signedUrl(file, source);
      sha.replaceChildren(el("code", { class: "sha256" }, signed.sha256));
    }),
  }, "Show sha256"));
  const preview = el("div", { class: "preview", "aria-live": "polite" });
  const facts = [
    ["Id", el("code", {}, file.id)],
    ["Content type", file.contentType],
    ["Size", `${formatBytes(file.length)} (${formatCount(file.length)} bytes)`],
    ["Modified", timeElement(file.lastModified)],
    ["Created", timeElement(file.createdAt)],
    ["Created by", creatorText(file.createdBy) || "—"],
    ["Uploaded via", viaText(file.uploadedVia)],
    ["Tags", file.tags.length ? tagChips(file.tags) : "none"],
  ];
  if (file.enos) facts.push(["EnOS URI", el("code", { class: "enos-uri" }, file.enos.fileUri)]);
  panel.replaceChildren(
    el("div", { class: "row spread" },
      el("h2", { id: "details-title" }, file.name),
      el("button", { type: "button", class: "secondary", "aria-label": "Close details", onclick: closeDetails }, "Close"),
    ),
    el("dl", { class: "facts" }, facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]), el("dt", {}, "sha256"), sha),
    el("div", { class: "row" }, fileActions(file, source, state.me.canWrite)),
    el("h3", {}, "Preview"),
    preview,
  );
  panel.hidden = false;
  panel.querySelector("h2").setAttribute("tabindex", "-1");
  panel.querySelector("h2").focus();
  const { url } = await signedUrl(file, source);
  await showPreview(preview, file, url);
}

function closeDetails() {
  $("details").hidden = true;
  state.selected = null;
}

// ---------------------------------------------------------------- tags and delete

function tagRow(name = "", value = "") {
  const index = $("edit-tags-rows").children.length + 1;
  const row = el(
    "div",
    { class: "row tag-row" },
    el("label", { for: `tag-name-${index}`, class: "visually-hidden" }, `Tag ${index} name`),
    el("input", { id: `tag-name-${index}`, class: "tag-name", value: name, placeholder: "name", spellcheck: "false" }),
    el("label", { for: `tag-value-${index}`, class: "visually-hidden" }, `Tag ${index} value`),
    el("input", { id: `tag-value-${index}`, class: "tag-value", value, placeholder: "value", spellcheck: "false" }),
    el("button", {
      type: "button",
      class: "secondary",
      "aria-label": `Remove tag ${index}`,
      onclick: () => row.remove(),
    }, "Remove"),
  );
  $("edit-tags-rows").append(row);
  return row;
}

function editTags(file) {
  const dialog = $("edit-tags");
  $("edit-tags-name").textContent = file.name;
  $("edit-tags-rows").replaceChildren();
  $("edit-tags-error").hidden = true;
  for (const tag of file.tags) tagRow(tag.name, tag.value);
  if (!file.tags.length) tagRow();
  dialog.dataset.id = file.id;
  dialog.showModal();
}

async function saveTags(event) {
  event.preventDefault();
  const dialog = $("edit-tags");
  if (event.submitter && event.submitter.value === "cancel") {
    dialog.close();
    return;
  }
  const tags = [];
  for (const row of $("edit-tags-rows").children) {
    const name = row.querySelector(".tag-name").value.trim();
    const value = row.querySelector(".tag-value").value;
    if (name) tags.push({ name, value });
  }
  try {
    await graphql(SET_TAGS, { id: dialog.dataset.id, tags });
  } catch (error) {
    $("edit-tags-error").textContent = error.message;
    $("edit-tags-error").hidden = false;
    return;
  }
  dialog.close();
  await attempt(listFiles);
  const updated = state.files.find((f) => f.id === dialog.dataset.id);
  if (updated && state.selected && state.selected.id === updated.id) {
    await attempt(() => openDetails(updated, currentSource()));
  }
}

function confirmDelete(file) {
  const dialog = $("confirm-delete");
  $("confirm-delete-name").textContent = file.name;
  $("confirm-delete-button").setAttribute("aria-label", `Delete ${file.name}`);
  dialog.dataset.id = file.id;
  dialog.showModal();
}

async function onDeleteChoice(event) {
  event.preventDefault();
  const dialog = $("confirm-delete");
  dialog.close();
  if (!event.submitter || event.submitter.value !== "delete") return;
  await attempt(async () => {
    await graphql(DELETE, { id: dialog.dataset.id });
    if (state.selected && state.selected.id === dialog.dataset.id) closeDetails();
    await listFiles();
  });
}

// ---------------------------------------------------------------- upload

function startUpload(fileList) {
  const files = [...fileList];
  if (!files.length || !state.asset) return;
  let tags;
  try {
    tags = parseTagList($("upload-tags").value, { valuesRequired: true });
  } catch (error) {
    showError(`Tags for the upload: ${error.message}`);
    return;
  }
  clearError();
  let refresh = null;
  uploadFiles({
    files,
    assetId: state.asset.id,
    tags,
    list: $("upload-list"),
    onUploaded: () => {
      // One listing refresh for a burst of finished files.
      clearTimeout(refresh);
      refresh = setTimeout(() => attempt(listFiles), 200);
    },
  });
}

function wireUpload() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    startUpload(event.dataTransfer.files);
  });
  $("file-picker").addEventListener("change", (event) => {
    startUpload(event.target.files);
    event.target.value = "";
  });
}

// ---------------------------------------------------------------- routing

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  if (!session.token()) {
    show("sign-in");
    return;
  }
  if (!state.me) {
    const data = await attempt(() => graphql(CURRENT_TOKEN));
    if (!data) return;
    state.me = data.currentToken;
  }
  showSignedIn();
  const hash = location.hash.slice(1) || "/";
  const asset = hash.match(/^\/asset\/(.+)$/);
  if (asset) {
    await attempt(() => showAsset(decodeURIComponent(asset[1])));
    return;
  }
  const params = new URLSearchParams(hash.split("?")[1] || "");
  await attempt(() => showAssets(params.get("q") || "", Math.max(0, Number(params.get("offset")) || 0)));
}

function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("asset-search").addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(assetsHash($("asset-text").value.trim(), 0));
  });
  $("file-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.offset = 0;
    attempt(listFiles);
  });
  $("file-filters").addEventListener("reset", () => {
    // Clear resets the filters, not which files are shown (the event comes before the reset).
    const source = $("source").value;
    setTimeout(() => {
      $("source").value = source;
      state.offset = 0;
      attempt(listFiles);
    });
  });
  for (const id of ["source", "order-by", "sort", "page-size"]) {
    $(id).addEventListener("change", () => {
      state.offset = 0;
      attempt(listFiles);
    });
  }
  $("filters-toggle").addEventListener("click", () => {
    const folded = $("file-filters").classList.toggle("folded");
    $("filters-toggle").setAttribute("aria-expanded", String(!folded));
  });
  $("edit-tags-form").addEventListener("submit", saveTags);
  $("edit-tags-add").addEventListener("click", () => tagRow().querySelector("input").focus());
  $("confirm-delete").querySelector("form").addEventListener("submit", onDeleteChoice);
  wireUpload();
  window.addEventListener("hashchange", route);
  route();
}

start();
