// Formatting in the reader's locale, and the one way the console builds DOM: names, tags and
// file contents only ever become text nodes or attribute values, never markup.

/**
 * An element with attributes, properties (`on*` handlers, `hidden`, ...) and children; strings
 * become text nodes; nothing in the console parses a string as HTML.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "hidden" || key === "disabled") node[key] = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const UNITS = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte", "petabyte"];

/** 1.5 MB, 12 kB, 800 byte(s): decimal units, in the reader's language and number format. */
export function formatBytes(bytes) {
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return new Intl.NumberFormat(undefined, {
    style: "unit",
    unit: UNITS[unit],
    unitDisplay: unit === 0 ? "long" : "short",
    maximumFractionDigits: unit === 0 ? 0 : 1,
  }).format(value);
}

export function formatCount(value) {
  return new Intl.NumberFormat().format(value);
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A time element: the reader's local format shown, the exact UTC instant machine-readable. */
export function timeElement(iso) {
  const date = new Date(iso);
  return el("time", { datetime: iso, title: iso }, DATE_TIME.format(date));
}

/**
 * An asset's devices, from its signals' channel ids (`<product>.<device>.data_in.<channel>`),
 * in the order they first appear.
 */
export function devicesOf(asset) {
  const seen = new Map();
  for (const signal of asset.signals || []) {
    const parts = signal.channel.id.split(".");
    if (parts.length < 4 || parts[2] !== "data_in") continue;
    const key = `${parts[0]}.${parts[1]}`;
    if (!seen.has(key)) seen.set(key, { pid: parts[0], did: parts[1], key });
  }
  return [...seen.values()];
}

/**
 * Tags typed as `name=value, other` (a name alone matches any value in filters). Commas and
 * equals signs inside a tag are not expressible here; the tag editor takes any text.
 */
export function parseTagList(text, { valuesRequired }) {
  const tags = [];
  for (const part of text.split(",")) {
    const item = part.trim();
    if (!item) continue;
    const at = item.indexOf("=");
    const name = (at < 0 ? item : item.slice(0, at)).trim();
    const value = at < 0 ? null : item.slice(at + 1).trim();
    if (!name) throw new Error(`"${item}" has no tag name before "="`);
    if (valuesRequired && value === null) throw new Error(`tag "${name}" needs a value (name=value)`);
    tags.push({ name, value });
  }
  return tags;
}

/** How a file's bytes arrived (Content.uploadedVia), in words. */
export function viaText(via) {
  switch (via) {
    case "graphql":
      return "upload URL (API, console or assetfiles upload)";
    case "tus":
      return "resumable upload (tus: console, assetfiles upload or a tus client)";
    case "device-api":
      return "device upload (Authorization: Device)";
    case "enos-device":
      return "EnOS device API (device SDK)";
    case "enos-integration":
      return "EnOS integration API";
    case "fixture":
      return "fixture (assetfiles apply)";
    default:
      return "not recorded";
  }
}

export function creatorText(createdBy) {
  if (!createdBy) return "";
  switch (createdBy.__typename) {
    case "Device":
      return `device ${createdBy.pid}/${createdBy.identity}`;
    case "User":
      return `user ${createdBy.name}`;
    case "ApiToken":
      return `token ${createdBy.name}`;
    default:
      return "";
  }
}
