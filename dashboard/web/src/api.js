// The public APIs the dashboard reads. The credentials they are read with
// are the session's (session.js); they go in Authorization headers only,
// never in a URL.

// APIError carries the status and the message of an error body, in either
// API's shape (Genesys ErrorBody, ServiceStack ResponseStatus, RFC 6749),
// and the fields a Genesys ErrorBody's details name.
export class APIError extends Error {
  /** @param {number} status @param {string} message @param {string[]} [fields] */
  constructor(status, message, fields = []) {
    super(message);
    this.status = status;
    this.fields = fields;
  }
}

/**
 * refuses reports whether err is the aggregate's refusal of a request's
 * field: a 400 whose details name it. A store that does not keep the
 * latency and traffic measures refuses a query naming one so, naming
 * `metrics`.
 * @param {unknown} err
 * @param {string} field
 */
export const refuses = (err, field) => err instanceof APIError && err.status === 400 && err.fields.includes(field);

/**
 * request calls usaged and returns its JSON answer, or throws an APIError.
 * @param {string} path
 * @param {{method?: string, headers?: Record<string, string>, body?: string}} [init]
 * @returns {Promise<any>}
 */
async function request(path, { method = 'GET', headers = {}, body } = {}) {
  let res;
  try {
    res = await fetch(path, { method, headers: { Accept: 'application/json', ...headers }, body, cache: 'no-store' });
  } catch (e) {
    throw new APIError(0, `usaged is unreachable (${e instanceof Error ? e.message : e})`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text for the message
  }
  if (!res.ok) {
    const msg =
      data?.message ||
      data?.responseStatus?.message ||
      data?.error_description ||
      data?.error ||
      text.trim() ||
      res.statusText;
    const fields = Array.isArray(data?.details) ? data.details.map((d) => d?.fieldName).filter((f) => typeof f === 'string') : [];
    throw new APIError(res.status, msg, fields);
  }
  return data;
}

const bearer = (t) => ({ Authorization: `Bearer ${t}` });

// signIn trades client credentials for a token at /oauth/token and learns
// its organization from /api/v2/tokens/me.
export async function signIn(clientId, clientSecret) {
  // The credentials go in the form, not in HTTP Basic: a refused Basic
  // login answers with a challenge, and the browser would put up its own
  // password dialog over the page.
  const tok = await request('/oauth/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
  });
  const me = await request('/api/v2/tokens/me', { headers: bearer(tok.access_token) });
  return {
    token: tok.access_token,
    // Sign in again a minute early rather than fail a refresh.
    expires: Date.now() + (tok.expires_in - 60) * 1000,
    org: me.organization?.name || '',
    client: me.OAuthClient?.name || '',
  };
}

// checkKey confirms that an API key is accepted by the reports.
export async function checkKey(apiKey) {
  await request('/api/services/usage?PageSize=1', { headers: bearer(apiKey) });
}

// aggregate runs POST /api/v2/usage/aggregate (usaged's synchronous query).
export function aggregate(token, q) {
  return request('/api/v2/usage/aggregate', {
    method: 'POST',
    headers: { ...bearer(token), 'Content-Type': 'application/json' },
    body: JSON.stringify(q),
  });
}

/**
 * limits reads every usage limit of the token's organization, a page of
 * 500 at a time (an organization has at most 1,000), with its status in
 * the current window when status is set.
 * @param {string} token
 * @param {{status?: boolean}} [opts]
 * @returns {Promise<import('./limits.js').Limit[]>}
 */
export async function limits(token, { status = false } = {}) {
  const out = [];
  for (let page = 1; ; page += 1) {
    const q = new URLSearchParams({ pageSize: '500', pageNumber: String(page) });
    if (status) q.set('expand', 'status');
    const r = await request(`/api/v2/usage/limits?${q}`, { headers: bearer(token) });
    out.push(...r.entities);
    if (page >= r.pageCount) return out;
  }
}

// reports reads a service-usage route as JSON.
export function reports(apiKey, path, params = {}) {
  const qs = new URLSearchParams(params).toString();
  return request(`/api${path}${qs ? `?${qs}` : ''}`, { headers: bearer(apiKey) });
}

// reportsAll reads every page of a paged service-usage route.
export async function reportsAll(apiKey, path, params = {}) {
  const out = [];
  for (let page = 1; ; page += 1) {
    const r = await reports(apiKey, path, { ...params, Page: page, PageSize: 1000 });
    out.push(...r.results);
    if (page >= r.totalPages) return out;
  }
}

// demoSession asks the server whether it runs a demo to sign in to.
export async function demoSession() {
  try {
    const s = await request('/ui/session');
    return s?.demo ? s : null;
  } catch {
    return null;
  }
}
