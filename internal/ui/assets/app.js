// app.js starts the dashboard: it takes the token from the URL fragment (#token=...) into
// sessionStorage, lists workloads, segments and events, follows their watches, and redraws
// the topology, the list and the open workload's panel as changes arrive.

import * as api from './api.js';
import { segmentViews } from './model.js';
import { renderList, renderPanel } from './panel.js';
import { render as renderTopology } from './topology.js';

const TOKEN_KEY = 'strata.token';
const LOG_LINES = 40;
const MAX_EVENTS = 500;

const state = {
  workloads: new Map(),
  segments: new Map(),
  events: new Map(),
  selected: null,
  logs: { workload: null, instance: null, text: undefined, error: '' },
  live: { workloads: false, segments: false, events: false },
};

const $ = (id) => document.getElementById(id);

// The token: from the fragment when given (then removed from the address bar), else from
// this tab's sessionStorage.
function takeToken() {
  const frag = new URLSearchParams(location.hash.slice(1));
  const t = frag.get('token');
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

// Waiting for a token: followers that got a 401 wait on tokenGiven.
let tokenGiven = null;
let giveToken = () => {};
function needToken(msg) {
  if (!tokenGiven) tokenGiven = new Promise((resolve) => { giveToken = resolve; });
  $('auth-msg').textContent = sessionStorage.getItem(TOKEN_KEY)
    ? `The daemon refused the token (${msg}).`
    : "This daemon's API answers only requests with a bearer token.";
  if (state.workloads.size === 0) setEmpty('Waiting for a token.');
  $('auth').hidden = false;
  setConn('auth', 'token needed');
  return tokenGiven;
}

function setEmpty(msg) {
  $('topo-empty').textContent = msg;
  $('topo-empty').hidden = false;
}

function setConn(s, label) {
  $('conn').dataset.state = s;
  $('conn-text').textContent = label;
}

function updateConn() {
  if ($('conn').dataset.state === 'auth') return;
  const all = Object.values(state.live).every(Boolean);
  setConn(all ? 'live' : 'connecting', all ? 'live' : 'reconnecting');
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

// follow keeps store (a Map by name) equal to the daemon's objects of resource: list, then
// apply the watch's changes; after an error, list again.
async function follow(resource, store) {
  let backoff = 500;
  for (;;) {
    try {
      const l = await api.list(resource);
      store.clear();
      for (const o of l.items) store.set(o.metadata.name, o);
      trim(resource, store);
      state.live[resource] = true;
      updateConn();
      changed(resource);
      backoff = 500;
      for await (const ev of api.watch(resource, l.resourceVersion)) {
        if (ev.type === 'ERROR') break; // too old: list again
        const o = ev.object;
        if (ev.type === 'DELETED') store.delete(o.metadata.name);
        else store.set(o.metadata.name, o);
        trim(resource, store);
        changed(resource, o);
      }
    } catch (err) {
      if (err instanceof api.AuthError) {
        state.live[resource] = false;
        await needToken(err.message);
        continue;
      }
      console.warn(`watch ${resource}:`, err);
    }
    state.live[resource] = false;
    updateConn();
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 8000);
  }
}

function trim(resource, store) {
  if (resource !== 'events' || store.size <= MAX_EVENTS) return;
  const old = [...store.values()].sort(byTime).slice(0, store.size - MAX_EVENTS);
  for (const e of old) store.delete(e.metadata.name);
}

function byTime(a, b) { return String(a.time).localeCompare(String(b.time)); }

// changed schedules a redraw; a change to the open workload also refreshes its log.
function changed(resource, obj) {
  if (resource === 'workloads' && obj && obj.metadata.name === state.selected) refreshLogs(false);
  scheduleRender();
}

let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; renderAll(); });
}

function sortedWorkloads() {
  return [...state.workloads.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

function renderAll() {
  const wls = sortedWorkloads();
  const views = segmentViews([...state.segments.values()], wls);
  const drawn = renderTopology($('topology'), wls.length || state.segments.size ? views : [], state.selected, select);
  $('topology').toggleAttribute('hidden', !drawn); // an SVG element has no hidden property
  if (drawn) $('topo-empty').hidden = true;
  else setEmpty('No workloads yet: strata apply -f app.yaml');
  renderList($('wl-list'), wls, state.selected, select);
  const tiers = {};
  for (const w of wls) { const t = (w.status && w.status.tier) || 'assessing'; tiers[t] = (tiers[t] || 0) + 1; }
  $('counts').textContent = `${views.length} segment${views.length === 1 ? '' : 's'} \u00b7 ${wls.length} workload${wls.length === 1 ? '' : 's'}` +
    (wls.length ? ' (' + Object.entries(tiers).map(([t, n]) => `${n} ${t}`).join(', ') + ')' : '');
  renderSelected();
}

function renderSelected() {
  const panel = $('panel');
  const w = state.selected && state.workloads.get(state.selected);
  if (!w) {
    panel.hidden = true;
    panel.replaceChildren();
    return;
  }
  const obj = `Workload/${w.metadata.name}`;
  const evs = [...state.events.values()].filter((e) => e.object === obj || (e.object || '').startsWith(obj + '/')).sort(byTime);
  renderPanel(panel, w, evs, state.logs, {
    close: () => select(null),
    choose: (id) => { state.logs.instance = id; state.logs.text = undefined; refreshLogs(true); },
    refreshLogs: () => refreshLogs(true),
  });
}

function select(name) {
  state.selected = name === state.selected ? null : name;
  const w = state.selected && state.workloads.get(state.selected);
  const first = w && w.status && w.status.instances && w.status.instances[0];
  state.logs = { workload: state.selected, instance: first ? first.id : `${state.selected}-0`, text: undefined, error: '' };
  scheduleRender();
  if (state.selected) refreshLogs(true);
}

// refreshLogs fetches the end of the open workload's log: at once when asked by the user,
// else at most every two seconds.
let logsBusy = false;
let logsAgain = false;
let logsLast = 0;
async function refreshLogs(now) {
  if (!state.selected) return;
  if (logsBusy) { logsAgain = true; return; }
  if (!now && Date.now() - logsLast < 2000) {
    setTimeout(() => refreshLogs(true), 2000);
    return;
  }
  logsBusy = true;
  const want = { ...state.logs };
  try {
    const text = await api.logs(want.workload, want.instance);
    if (state.logs.workload === want.workload && state.logs.instance === want.instance) {
      state.logs.text = text.split('\n').slice(-LOG_LINES - 1).join('\n').replace(/\n$/, '');
      state.logs.error = '';
    }
  } catch (err) {
    if (state.logs.workload === want.workload) state.logs.error = `no log: ${err.message}`;
  } finally {
    logsBusy = false;
    logsLast = Date.now();
  }
  scheduleRender();
  if (logsAgain) { logsAgain = false; refreshLogs(false); }
}

function main() {
  api.setToken(takeToken());
  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('auth-token').value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    api.setToken(t);
    $('auth-token').value = '';
    $('auth').hidden = true;
    setConn('connecting', 'connecting');
    tokenGiven = null;
    giveToken();
  });
  setInterval(() => { if (state.selected) refreshLogs(false); }, 5000);
  follow('workloads', state.workloads);
  follow('segments', state.segments);
  follow('events', state.events);
}

main();
