// The HTTP API of `celltwin serve`, as the page calls it: JSON in and out, the token asked for
// once the server answers 401 and sent as `Authorization: Bearer` from then on, errors turned
// into messages a person can act on (422 details with their suggestions).

const PREFIX = document.body.dataset.api || "/api/v1";
const TOKEN_KEY = "celltwin-token";
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let asking = null; // one token dialog for every request that met a 401 at once

export class ApiError extends Error {
  constructor(status, message, suggestions = []) {
    super(message);
    this.status = status;
    this.suggestions = suggestions;
  }
}

function askToken(wrong) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  document.getElementById("token-message").textContent = wrong
    ? "That token was refused. Check it and try again."
    : "This server asks for an access token. Ask whoever started it.";
  input.value = "";
  asking = new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        asking = null;
        const value = input.value.trim();
        resolve(dialog.returnValue === "ok" && value ? value : null);
      },
      { once: true },
    );
  });
  dialog.showModal();
  input.focus();
  return asking;
}

function detailMessage(body) {
  const detail = body && body.detail;
  // {detail: "...", suggestions: [...], allowed: [...]} (celltwin serve) or {detail: {message, suggestions}}
  if (typeof detail === "string") return { message: detail, suggestions: body.suggestions || [] };
  if (Array.isArray(detail)) {
    // FastAPI's own validation errors: [{loc: ["body", "dose"], msg: "..."}]
    const parts = detail.map((d) => {
      const where = (d.loc || []).filter((p) => p !== "body").join(".");
      return where ? `${where}: ${d.msg}` : d.msg;
    });
    return { message: parts.join("; "), suggestions: [] };
  }
  if (detail && typeof detail === "object") {
    return { message: detail.message || JSON.stringify(detail), suggestions: detail.suggestions || [] };
  }
  return { message: "", suggestions: [] };
}

async function toError(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const { message, suggestions } = detailMessage(body);
  const fallback = {
    404: "Not found on the server.",
    413: "The request is too large for this server: send fewer genes or candidates.",
    429: "The server is busy: try again in a moment.",
  }[resp.status];
  return new ApiError(
    resp.status,
    message || fallback || `The server answered ${resp.status} ${resp.statusText}.`,
    suggestions,
  );
}

// Call `method path` of the API; returns the parsed JSON (or the Response when `raw`).
export async function api(path, { method = "GET", body, raw = false } = {}) {
  let refused = false;
  for (;;) {
    const headers = { Accept: raw ? "*/*" : "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let resp;
    try {
      resp = await fetch(PREFIX + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "The server did not answer: is `celltwin serve` still running?");
    }
    if (resp.status === 401) {
      const given = await askToken(refused || Boolean(token));
      if (given === null) throw new ApiError(401, "This server needs an access token.");
      token = given;
      sessionStorage.setItem(TOKEN_KEY, token);
      refused = true;
      continue;
    }
    if (!resp.ok) throw await toError(resp);
    if (raw) return resp;
    if (resp.status === 204) return null;
    return resp.json();
  }
}

// Show `error` in the alert box `box`; suggestions become buttons that call `onSuggest(name)`.
export function showError(box, error, onSuggest) {
  box.replaceChildren();
  const p = document.createElement("p");
  p.textContent = error instanceof ApiError ? error.message : `Something went wrong: ${error}`;
  box.append(p);
  const suggestions = (error && error.suggestions) || [];
  if (suggestions.length && onSuggest) {
    const row = document.createElement("p");
    row.className = "suggestions";
    row.append("Did you mean: ");
    for (const s of suggestions.slice(0, 8)) {
      const name = typeof s === "string" ? s : s.name;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.textContent = name;
      button.addEventListener("click", () => onSuggest(name));
      row.append(button, " ");
    }
    box.append(row);
  }
  box.hidden = false;
}

export function clearError(box) {
  box.hidden = true;
  box.replaceChildren();
}

// ---- answers as the page reads them (either the per-gene or the column layout) ---------------

// [{gene, effect, lower, upper}] of a prediction: `genes` as objects, or as names with the
// columns `effect`, `lower`, `upper`. Missing values (null) become NaN.
export function genesOf(result) {
  const num = (v) => (v === null || v === undefined ? NaN : Number(v));
  if (!(result.genes || []).length || typeof result.genes[0] === "object") {
    return (result.genes || []).map((g) => ({ gene: g.gene, effect: num(g.effect), lower: num(g.lower), upper: num(g.upper) }));
  }
  return result.genes.map((gene, i) => ({
    gene,
    effect: num(result.effect[i]),
    lower: num((result.lower || [])[i]),
    upper: num((result.upper || [])[i]),
  }));
}

// [{name, kind, score}]: `activities`, or `regulators` and `pathways` given apart.
export function activitiesOf(result) {
  if (result.activities) return result.activities;
  const tag = (kind) => (a) => ({ ...a, kind });
  return [...(result.regulators || []).map(tag("regulator")), ...(result.pathways || []).map(tag("pathway"))];
}

// Below this in-domain score a prediction is flagged when the server does not say itself.
const FAR_OUT = 0.05;

export function outOfDomain(result) {
  if (typeof result.out_of_domain === "boolean") return result.out_of_domain;
  return Number.isFinite(result.in_domain) && result.in_domain < FAR_OUT;
}
