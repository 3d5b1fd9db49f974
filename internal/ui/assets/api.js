// api.js talks to the daemon that served the page: lists, watches (JSON lines over a
// streaming fetch) and logs. Every request carries the bearer token, when there is one.

export const PREFIX = '/apis/strata.dev/v1alpha1/';

let token = '';

// setToken sets the token sent as "Authorization: Bearer TOKEN" from now on.
export function setToken(t) { token = t || ''; }

// AuthError is a 401 answer: the token is missing, unknown or revoked.
export class AuthError extends Error {}

async function request(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  if (token) headers.set('Authorization', 'Bearer ' + token);
  const res = await fetch(path, { ...opts, headers, cache: 'no-store', credentials: 'omit' });
  if (res.ok) return res;
  const body = await res.json().catch(() => null);
  const msg = (body && body.message) || `${res.status} ${res.statusText}`;
  if (res.status === 401) throw new AuthError(msg);
  throw new Error(msg);
}

// list returns {items, resourceVersion} of a resource: workloads, segments or events.
export async function list(resource, signal) {
  const res = await request(PREFIX + resource, { signal });
  const body = await res.json();
  return { items: body.items || [], resourceVersion: body.resourceVersion };
}

// watch yields the changes of a resource after resourceVersion, one {type, object} at a
// time, until the stream ends or signal aborts.
export async function* watch(resource, resourceVersion, signal) {
  const q = new URLSearchParams({ watch: '1', resourceVersion });
  const res = await request(`${PREFIX}${resource}?${q}`, { signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
}

// logs returns an instance's log as text.
export async function logs(workload, instance, signal) {
  const q = new URLSearchParams({ instance });
  const res = await request(`${PREFIX}workloads/${encodeURIComponent(workload)}/logs?${q}`, { signal });
  return res.text();
}
