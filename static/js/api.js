// The HTTP API (README "HTTP API"). Every URL is relative to the page, so the client also works
// when a proxy serves the application under a path prefix (https://host/viewer/).

import { authHeaders, token } from "./auth.js";

/** An error the server answered with: {"error": code, "detail": sentence} plus extra fields. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `The server answered ${status}.`);
    this.status = status;
    this.code = body?.error ?? `http_${status}`;
    this.body = body ?? {};
  }
}

export async function requestJson(url, { contentType, ...options } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (contentType) headers["Content-Type"] = contentType;
  const response = await fetch(url, { ...options, headers });
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page): fall through with body null.
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/**
 * The series in the library, oldest first.
 *
 * `GET /images` answers 404 while the library is empty (the older service did, and its clients
 * rely on it). Browsers log every 404 as a console error, so the counts from `/health` are asked
 * first and `/images` only when there is something to list.
 */
export async function listSeries() {
  const health = await requestJson("health");
  const library = health?.library;
  if (library?.status === "unavailable") {
    // A PACS that cannot be reached (--dicomweb): say so rather than show an empty library.
    throw new ApiError(503, { error: "library_unavailable", detail: library.detail });
  }
  if (!library?.series) return [];
  try {
    const body = await requestJson("images");
    return body.series;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return []; // emptied meanwhile
    throw error;
  }
}

export async function deleteSeries(seriesUid) {
  return requestJson(`images/${encodeURIComponent(seriesUid)}`, { method: "DELETE" });
}

/** A thumbnail URL relative to the page (the server gives one rooted at "/"). */
export function relativeUrl(url) {
  return url.replace(/^\/+/, "");
}

/**
 * A URL an <img> can show for a server image. An <img> cannot send the Authorization header, so
 * with a token the image is fetched here and shown from a blob: URL (revoke it when done).
 */
export async function imageSource(url) {
  if (!token()) return relativeUrl(url);
  const response = await fetch(relativeUrl(url), { headers: authHeaders() });
  if (!response.ok) throw new ApiError(response.status, null);
  return URL.createObjectURL(await response.blob());
}

/**
 * POST /images with one part named "files" per file.
 *
 * XMLHttpRequest rather than fetch: only it reports upload progress. `onProgress(sent, total)`
 * follows the request body. Resolves with the server's body (`{"files": [...]}`) on success;
 * rejects with an ApiError whose body may still list per-file outcomes (422, 413). The returned
 * `abort()` cancels the upload (files the server finished storing stay stored).
 */
export function uploadFiles(entries, onProgress) {
  const request = new XMLHttpRequest();
  const form = new FormData();
  for (const { file, name } of entries) form.append("files", file, name);

  const done = new Promise((resolve, reject) => {
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    request.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        // handled below as an error without a body
      }
      if (request.status >= 200 && request.status < 300 && body) resolve(body);
      else reject(new ApiError(request.status, body));
    });
    request.addEventListener("error", () =>
      reject(new Error("The upload failed: the server could not be reached.")),
    );
    request.addEventListener("abort", () =>
      reject(new DOMException("Upload cancelled.", "AbortError")),
    );
  });

  request.open("POST", "images");
  request.setRequestHeader("Accept", "application/json");
  for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
  request.send(form);
  return { done, abort: () => request.abort() };
}
