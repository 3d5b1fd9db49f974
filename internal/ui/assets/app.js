// app.js starts the dashboard: it takes the token from the URL fragment (#token=...) into
// sessionStorage, lists hosts, workloads, segments and events, follows their watches (as
// server-sent events), and redraws the host strip, the topology, the list and the open
// workload's panel as changes arrive, and the node VMs the daemon runs (listed again when a
// workload changes, and every ten seconds). The Plan tab draws a plan file the user loads.

import * as api from './api.js';
import { renderHosts, tickHeartbeats } from './hosts.js';
import { segmentViews } from './model.js';
import { renderList, renderPanel } from './panel.js';
import { hostBox, liveHost, planModel, readPlan, renderPlan } from './plan.js';
import { render as renderTopology } from './topology.js';

const TOKEN_KEY = 'strata.token';
const LOG_LINES = 40;
const MAX_EVENTS = 500;
const HISTORY_EVERY = 10000; // ms: the history endpoint's interval
const NODES_EVERY = 10000; // ms: node VMs have no watch; they are listed again this often

const state = {
  hosts: new Map(),
  workloads: new Map(),
  segments: new Map(),
  events: new Map(),
  selected: null,
  logs: { workload: null, instance: null, text: undefined, error: '' },
  history: { workload: null, data: null, error: '' },
  live: { hosts: false, workloads: false, segments: false, events: false },
  // streams says, per resource, whether its watch is read as server-sent events.
  streams: {},
  hostsNote: '',
  // nodes are the daemon's node VMs (GET .../nodes); nodesNote says why there are none to show.
  nodes: [],
  nodesNote: '',
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
  if (state.hosts.size === 0) {
    state.hostsNote = 'Waiting for a token.';
    renderHostStrip();
  }
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
// apply the watch's changes (the watch itself reconnects from its last change when a stream
// ends); when the watch is too old, list again. A daemon without the resource (an older one)
// is asked again every half minute, and does not count against "live".
async function follow(resource, store) {
  let backoff = 500;
  for (;;) {
    try {
      const l = await api.list(resource);
      if (resource === 'hosts') state.hostsNote = '';
      store.clear();
      for (const o of l.items) store.set(o.metadata.name, o);
      trim(resource, store);
      state.live[resource] = true;
      updateConn();
      changed(resource);
      backoff = 500;
      for await (const ev of api.watch(resource, l.resourceVersion)) {
        if (ev.type === 'ERROR') break; // too old: list again
        if (ev.type === 'OPEN' || ev.type === 'CLOSED') {
          state.live[resource] = ev.type === 'OPEN';
          if (ev.type === 'OPEN') {
            state.streams[resource] = ev.sse ? 'sse' : 'json';
            $('conn').dataset.streams = [...new Set(Object.values(state.streams))].sort().join(' ');
          }
          else if (ev.error) console.warn(`watch ${resource}:`, ev.error);
          updateConn();
          continue;
        }
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
      if (err instanceof api.NotFoundError && resource === 'hosts') {
        state.live[resource] = true;
        state.hostsNote = 'This daemon does not report its host.';
        updateConn();
        scheduleRender();
        await sleep(30000);
        continue;
      }
      if (!(err instanceof api.GoneError)) console.warn(`watch ${resource}:`, err);
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

// changed schedules a redraw; a change to the open workload also refreshes its log, and a
// change to any workload lists the node VMs again (a replica started, moved or gone).
function changed(resource, obj) {
  if (resource === 'workloads' && obj && obj.metadata.name === state.selected) refreshLogs(false);
  if (resource === 'workloads') refreshNodes();
  scheduleRender();
}

// refreshNodes lists the daemon's node VMs; calls while one runs make one more after it.
// A daemon that does not list node VMs (an older one) shows the host's replicas alone.
let nodesBusy = false;
let nodesAgain = false;
async function refreshNodes() {
  if (nodesBusy) { nodesAgain = true; return; }
  nodesBusy = true;
  try {
    const l = await api.list('nodes');
    state.nodes = l.items;
    state.nodesNote = '';
  } catch (err) {
    if (err instanceof api.NotFoundError) {
      state.nodes = [];
      state.nodesNote = 'This daemon does not list node VMs.';
    } else if (!(err instanceof api.AuthError)) { // the watches ask for the token
      state.nodesNote = `node VMs not listed: ${err.message}`;
    }
  } finally {
    nodesBusy = false;
  }
  scheduleRender();
  if (nodesAgain) { nodesAgain = false; refreshNodes(); }
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

// hostName is the name of the host the daemon runs on, once it reported it.
function hostName() {
  const names = [...state.hosts.keys()].sort();
  return names.length === 1 ? names[0] : '';
}

function renderHostStrip() {
  renderHosts($('hosts'), [...state.hosts.values()], Date.now(), state.hostsNote);
}

function renderAll() {
  renderHostStrip();
  const wls = sortedWorkloads();
  const views = segmentViews([...state.segments.values()], wls);
  const drawn = renderTopology($('topology'), wls.length || state.segments.size ? views : [], state.selected, select, hostName());
  $('topology').toggleAttribute('hidden', !drawn); // an SVG element has no hidden property
  if (drawn) $('topo-empty').hidden = true;
  else setEmpty('No workloads yet: strata apply -f app.yaml');
  renderPlacement(wls);
  renderList($('wl-list'), wls, state.selected, select);
  const tiers = {};
  for (const w of wls) { const t = (w.status && w.status.tier) || 'assessing'; tiers[t] = (tiers[t] || 0) + 1; }
  $('counts').textContent = `${views.length} segment${views.length === 1 ? '' : 's'} \u00b7 ${wls.length} workload${wls.length === 1 ? '' : 's'}` +
    (wls.length ? ' (' + Object.entries(tiers).map(([t, n]) => `${n} ${t}`).join(', ') + ')' : '');
  renderSelected();
}

// renderPlacement draws the host as a box holding the node VMs the daemon runs, each with
// its class, shape, usage and replicas, and the replicas on the host's kernel beside them:
// the plan view's drawing, of the daemon's own placement.
function renderPlacement(wls) {
  const name = hostName();
  const box = hostBox(liveHost(name || 'this host', state.hosts.get(name), state.nodes, wls), true);
  const note = state.nodesNote || (state.nodes.length ? '' : 'No node VMs: every replica runs on the host\'s kernel or as a VM of its own.');
  $('placement-body').replaceChildren(box);
  $('placement-note').textContent = note;
  $('placement-note').hidden = !note;
  $('placement-count').textContent = `${state.nodes.length} node VM${state.nodes.length === 1 ? '' : 's'}`;
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
  const hist = state.history.workload === w.metadata.name ? state.history : {};
  renderPanel(panel, w, evs, state.logs, {
    close: () => select(null),
    choose: (id) => { state.logs.instance = id; state.logs.text = undefined; refreshLogs(true); },
    refreshLogs: () => refreshLogs(true),
  }, hist);
}

function select(name) {
  state.selected = name === state.selected ? null : name;
  const w = state.selected && state.workloads.get(state.selected);
  const first = w && w.status && w.status.instances && w.status.instances[0];
  state.logs = { workload: state.selected, instance: first ? first.id : `${state.selected}-0`, text: undefined, error: '' };
  state.history = { workload: state.selected, data: null, error: '' };
  scheduleRender();
  if (state.selected) {
    refreshLogs(true);
    refreshHistory();
  }
}

// refreshHistory fetches the open workload's usage history for its charts.
let historyBusy = false;
async function refreshHistory() {
  const name = state.selected;
  if (!name || historyBusy) return;
  historyBusy = true;
  try {
    const data = await api.history(name);
    if (state.selected === name) state.history = { workload: name, data, error: '' };
  } catch (err) {
    if (state.selected === name) state.history = { workload: name, data: state.history.data, error: `no usage history: ${err.message}` };
  } finally {
    historyBusy = false;
  }
  scheduleRender();
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
  setInterval(() => { if (state.selected) refreshHistory(); }, HISTORY_EVERY);
  setInterval(refreshNodes, NODES_EVERY);
  setInterval(() => { // the heartbeat's age
    if (!tickHeartbeats($('hosts'), [...state.hosts.values()], Date.now())) renderHostStrip();
  }, 1000);
  setupTabs();
  setupPlan();
  follow('hosts', state.hosts);
  follow('workloads', state.workloads);
  follow('segments', state.segments);
  follow('events', state.events);
  refreshNodes();
}

// The tabs: Host (what runs here, live) and Plan (a plan file, loaded by the user).
function showTab(name) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const on = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute('aria-controls')).hidden = !on;
  }
  document.body.dataset.view = name;
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => showTab(tab.dataset.tab));
    tab.addEventListener('keydown', (ev) => {
      if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
      const next = tabs[(tabs.indexOf(tab) + (ev.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      showTab(next.dataset.tab);
      next.focus();
    });
  }
  showTab('host');
}

// The plan view: a file chosen or dropped is read here and drawn; nothing is uploaded.
async function loadPlan(file) {
  const err = $('plan-error');
  try {
    const plan = readPlan(await file.text());
    renderPlan($('plan'), planModel(plan), file.name);
    $('plan').hidden = false;
    err.hidden = true;
  } catch (e) {
    err.textContent = `${file.name}: ${e.message}`;
    err.hidden = false;
  }
}

function setupPlan() {
  const input = $('plan-file');
  input.addEventListener('change', () => { if (input.files.length) loadPlan(input.files[0]); });
  // A file dropped anywhere else must not replace the page.
  window.addEventListener('dragover', (ev) => ev.preventDefault());
  window.addEventListener('drop', (ev) => ev.preventDefault());
  const drop = $('plan-drop');
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('dragging'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('dragging');
    const f = ev.dataTransfer && ev.dataTransfer.files[0];
    if (f) loadPlan(f);
  });
}

main();
