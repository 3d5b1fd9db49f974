// api.js talks to the daemon that served the page: lists, watches, usage history and logs.
// Every request carries the bearer token, when there is one.
//
// Watches are read as server-sent events (SSE): the page asks with "Accept: text/event-stream"
// and reads the answer with a streaming fetch, since the browser's EventSource cannot send the
// token. Each event is one change: "event:" is ADDED, MODIFIED, DELETED or ERROR, "id:" the
// resourceVersion of the change, "data:" the object. A daemon that answers with JSON lines
// instead (one {type, object} a line) is read as well.

export const PREFIX = '/apis/strata.dev/v1alpha1/';

let token = '';

// setToken sets the token sent as "Authorization: Bearer TOKEN" from now on.
export function setToken(t) { token = t || ''; }

// AuthError is a 401 answer: the token is missing, unknown or revoked.
export class AuthError extends Error {}

// GoneError is a 410 answer to a watch: the resourceVersion is too old, list again.
export class GoneError extends Error {}

// NotFoundError is a 404 answer: the daemon does not serve that path (an older daemon).
export class NotFoundError extends Error {}

async function request(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  if (token) headers.set('Authorization', 'Bearer ' + token);
  const res = await fetch(path, { ...opts, headers, cache: 'no-store', credentials: 'omit' });
  if (res.ok) return res;
  const body = await res.json().catch(() => null);
  const msg = (body && body.message) || `${res.status} ${res.statusText}`;
  if (res.status === 401) throw new AuthError(msg);
  if (res.status === 410) throw new GoneError(msg);
  if (res.status === 404) throw new NotFoundError(msg);
  throw new Error(msg);
}

// list returns {items, resourceVersion} of a resource: workloads, segments, events or hosts.
export async function list(resource, signal) {
  const res = await request(PREFIX + resource, { signal });
  const body = await res.json();
  return { items: body.items || [], resourceVersion: body.resourceVersion };
}

// parseSSE reads the complete events at the start of buf, text of an event stream. It returns
// {events, rest}: each event is {type, id, data} (type "message" when the event names none; id
// only when the event set one), and rest is the incomplete end of buf, to be prefixed to the
// next chunk. Comment lines (": keepalive") and events without data are dropped, as the SSE
// format says; line ends may be LF, CRLF or CR.
export function parseSSE(buf) {
  let text = buf;
  let hold = '';
  if (text.endsWith('\r')) { hold = '\r'; text = text.slice(0, -1); } // maybe half of a CRLF
  text = text.replace(/\r\n?/g, '\n');
  const end = text.lastIndexOf('\n\n');
  if (end < 0) return { events: [], rest: buf };
  const events = [];
  for (const block of text.slice(0, end).split('\n\n')) {
    const ev = parseBlock(block);
    if (ev) events.push(ev);
  }
  return { events, rest: text.slice(end + 2) + hold };
}

function parseBlock(block) {
  let type = '';
  let id;
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) id = value;
  }
  if (data.length === 0) return null;
  const ev = { type: type || 'message', data: data.join('\n') };
  if (id !== undefined) ev.id = id;
  return ev;
}

// watchOnce yields the changes of a resource after resourceVersion, one {type, object, id} at
// a time, from one connection, until the stream ends or signal aborts. Its first item is
// {type: 'OPEN', sse}: the daemon answered, with an event stream when sse is true.
export async function* watchOnce(resource, resourceVersion, signal) {
  const q = new URLSearchParams({ watch: '1', resourceVersion });
  const res = await request(`${PREFIX}${resource}?${q}`, { signal, headers: { Accept: 'text/event-stream' } });
  const sse = (res.headers.get('Content-Type') || '').startsWith('text/event-stream');
  yield { type: 'OPEN', sse };
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    if (sse) {
      const { events, rest } = parseSSE(buf);
      buf = rest;
      for (const e of events) yield { type: e.type, object: JSON.parse(e.data), id: e.id };
      continue;
    }
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
}

// resourceVersionOf is the resourceVersion an event leaves the watch at: its id, else the
// object's own.
function resourceVersionOf(ev) {
  if (ev.id) return ev.id;
  const m = ev.object && ev.object.metadata;
  return (m && m.resourceVersion) || '';
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

// watch follows a resource from resourceVersion for as long as signal allows: when a stream
// ends or breaks, it connects again from the last change it saw, after a backoff (250 ms,
// doubling up to 8 s, back to 250 ms once a stream delivered a change). Besides the changes
// it yields {type: 'OPEN', sse} when a stream starts and {type: 'CLOSED', error} when one
// ends, so the caller can tell whether it is live. An ERROR event is yielded and ends the
// watch; AuthError and GoneError are thrown: list again. opts.connect replaces watchOnce and
// opts.sleep the wait, for tests.
export async function* watch(resource, resourceVersion, signal, opts = {}) {
  const pause = opts.sleep || sleep;
  const connect = opts.connect || watchOnce;
  let rv = resourceVersion;
  let backoff = 250;
  while (!(signal && signal.aborted)) {
    let error = null;
    try {
      for await (const ev of connect(resource, rv, signal)) {
        if (ev.type === 'ERROR') { yield ev; return; }
        if (ev.type !== 'OPEN') {
          backoff = 250;
          rv = resourceVersionOf(ev) || rv;
        }
        yield ev;
      }
    } catch (err) {
      if (err instanceof AuthError || err instanceof GoneError) throw err;
      if (signal && signal.aborted) return;
      error = err;
    }
    yield { type: 'CLOSED', error };
    await pause(backoff, signal);
    backoff = Math.min(backoff * 2, 8000);
  }
}

// history returns the usage history of a workload: {workload, intervalSeconds, instances:
// [{instance, points: [{time, cpuCores, memoryBytes}]}]}, oldest point first.
export async function history(workload, signal) {
  const res = await request(`${PREFIX}workloads/${encodeURIComponent(workload)}/history`, { signal });
  return res.json();
}

// logs returns an instance's log as text.
export async function logs(workload, instance, signal) {
  const q = new URLSearchParams({ instance });
  const res = await request(`${PREFIX}workloads/${encodeURIComponent(workload)}/logs?${q}`, { signal });
  return res.text();
}
