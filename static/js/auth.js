// The access token (README "Security"). A server started with --token needs it on every API
// request. Open the page as /?token=…: the token is kept for this browser tab's session and
// removed from the address bar, so it does not linger in history or get copied with the link.

const STORAGE_KEY = "mediastream.token";

/** Take a `token` from the page's query string into session storage. Call once at start. */
export function adoptTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (!token) return;
  sessionStorage.setItem(STORAGE_KEY, token);
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
}

export function token() {
  return sessionStorage.getItem(STORAGE_KEY);
}

/** Headers that authorise a request (none when the server needs no token). */
export function authHeaders() {
  const value = token();
  return value ? { Authorization: `Bearer ${value}` } : {};
}
