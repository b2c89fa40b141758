// The console's only way to the server: the public GraphQL API and the signed URLs it hands out.
// Whatever the console does, a script with the same token can do through the same calls.

const TOKEN_KEY = "assetfiles.token";

/** An answer from the server that says something went wrong, in words a person can read. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * The token lives in this tab's sessionStorage (gone when the tab closes), or in localStorage
 * when the person asked to stay signed in. It is never put in a URL.
 */
export const session = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
  },
  remember(token, keep) {
    this.forget();
    (keep ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
  },
  forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
  },
};

/** Runs one GraphQL operation; GraphQL errors become an ApiError with the server's message. */
export async function graphql(query, variables = {}, token = session.token()) {
  let response;
  try {
    response = await fetch("/api/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Automation ${token}` },
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch (error) {
    throw new ApiError(`The server could not be reached (${error.message}).`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered ${response.status} without a readable body.`, {
      status: response.status,
    });
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const code = first.extensions && first.extensions.code;
    throw new ApiError(first.message, { status: response.status, code });
  }
  if (!response.ok) {
    throw new ApiError(`The server answered ${response.status}.`, { status: response.status });
  }
  return body.data;
}

export const CURRENT_TOKEN = `query CurrentToken { currentToken { name organizationId permissions canWrite } }`;

export const ASSETS = `query Assets($text: String, $limit: Int, $offset: Int) {
  assets(filters: {text: $text}, pagination: {limit: $limit, offset: $offset}) {
    id name description signals { id name channel { id } }
  }
  assetsCount(filters: {text: $text})
}`;

export const ASSET = `query Asset($id: ID!) {
  asset(id: $id) { id name description meta signals { id name channel { id } } }
}`;

export const FILES = `query Files($filters: ContentFilters, $pagination: Pagination,
    $devices: [AssetContentsDeviceInput]) {
  assetContents(filters: $filters, pagination: $pagination, devices: $devices) {
    assetContents {
      id name contentType type length lastModified createdAt
      tags { name value }
      createdBy { __typename ... on Device { pid identity } ... on User { name } ... on ApiToken { name } }
      enos { fileUri category }
      uploadedVia
    }
    totalCount
  }
}`;

const SIGNED_FIELDS = "id url expiresAt sha256";
export const CONTENT_URL = `query ContentUrl($id: ID!) { content(id: $id) { ${SIGNED_FIELDS} } }`;
export const DEVICE_CONTENT_URL = `query DeviceContentUrl($input: DeviceAssetContentInput!) {
  deviceAssetContent(input: $input) { ${SIGNED_FIELDS} }
}`;

export const SET_TAGS = `mutation SetTags($id: ID!, $tags: [TagInput!]!) {
  setContentTags(id: $id, tags: $tags) { id tags { name value } }
}`;
export const DELETE = `mutation Delete($id: ID!) { deleteContent(id: $id) { id } }`;

/**
 * A fresh signed URL (and the sha256) of one file: `content` for user and API content,
 * `deviceAssetContent` for a device's, as the documented workflow does.
 */
export async function signedUrl(file, source) {
  if (source.device) {
    const data = await graphql(DEVICE_CONTENT_URL, {
      input: { id: file.id, product_id: source.device.pid, device_id: source.device.did },
    });
    if (!data.deviceAssetContent) throw new ApiError("This file no longer exists.");
    return data.deviceAssetContent;
  }
  const data = await graphql(CONTENT_URL, { id: file.id });
  if (!data.content) throw new ApiError("This file no longer exists.");
  return data.content;
}
