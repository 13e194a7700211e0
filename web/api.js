// Candor browser client: REST helpers and token storage shared by every page.
// Tokens live in sessionStorage (one tab's sign-in); the access token is refreshed once when it expires.

const store = {
  get access() { return sessionStorage.getItem("candor.access"); },
  get refresh() { return sessionStorage.getItem("candor.refresh"); },
  save(pair) {
    sessionStorage.setItem("candor.access", pair.access_token);
    if (pair.refresh_token) sessionStorage.setItem("candor.refresh", pair.refresh_token);
  },
  clear() { sessionStorage.removeItem("candor.access"); sessionStorage.removeItem("candor.refresh"); },
};

// A link may carry "#access_token=..." (e.g. from a script or test); it is moved into storage and out of the URL.
(function adoptTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("access_token");
  if (token) {
    store.save({ access_token: token });
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.fields = body?.error?.fields || {};
  }
}

async function api(method, path, body, retried = false) {
  const headers = { "content-type": "application/json" };
  if (store.access) headers.authorization = `Bearer ${store.access}`;
  const response = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && !retried && store.refresh) {
    const refreshed = await fetch("/api/v1/auth/refresh", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refresh_token: store.refresh }),
    });
    if (refreshed.ok) { store.save(await refreshed.json()); return api(method, path, body, true); }
    store.clear();
  }
  const text = await response.text();
  const json = (response.headers.get("content-type") || "").includes("json");
  const data = json && text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return json ? data : text || null;
}

// A binary download (an export archive) as a Blob; a failed one throws like `api`.
async function download(path) {
  const response = await fetch(`/api/v1${path}`, { headers: store.access ? { authorization: `Bearer ${store.access}` } : {} });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response.blob();
}

// A chart the server draws (SVG) as a figure with a caption, or null when it has no data for it (404).
async function chart(path, caption) {
  let svg;
  try { svg = await api("GET", path); } catch (error) { if (error.status === 404) return null; throw error; }
  const parsed = new DOMParser().parseFromString(svg, "image/svg+xml").documentElement;
  if (parsed.nodeName !== "svg") return null;
  parsed.setAttribute("aria-hidden", "true");
  parsed.removeAttribute("width");
  parsed.removeAttribute("height");
  return el("figure", { class: "chart" }, el("div", { role: "img", "aria-label": caption }, document.importNode(parsed, true)), el("figcaption", {}, caption));
}

function signedIn() { return Boolean(store.access); }

async function signOut() {
  if (store.refresh) await api("POST", "/auth/logout", { refresh_token: store.refresh }).catch(() => {});
  store.clear();
  location.href = "/";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value); else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child != null && child !== false));  // absent parts are left out
  return node;
}

// A coach invitation as the candidate sees it: shared at once (an existing coach), and the link to send, with a
// ready email in their own mail program.
function invitationNote(invitation) {
  const link = `${location.origin}${invitation.link}`;
  const mail = `mailto:${encodeURIComponent(invitation.email)}?subject=${encodeURIComponent("Watch my practice interview on Candor")}` +
    `&body=${encodeURIComponent(`I'd like your feedback on my practice interview. Open this link to watch it live and read its report:\n\n${link}`)}`;
  return el("div", { class: "invited" },
    el("p", {}, invitation.shared ? `Shared with ${invitation.email}: they can watch from their Candor page now.` : `Invitation ready for ${invitation.email}.`),
    invitation.emailed ? el("p", {}, "We emailed them the link. It works for 14 days: ", el("code", {}, link))
      : el("p", {}, "Send them this link (it works for 14 days): ", el("code", {}, link)),
    invitation.emailed ? null : el("a", { href: mail }, "Email the invitation"));
}
