// panel.js renders the workload list and the panel of the selected workload: its tier and
// the assessment's reasons, its scaling, its instances, their usage charts, its recent events
// and the end of its log.

import { lineChart, series } from './charts.js';
import { instancesOf, restartsOf, segmentOf, seriesText, stateClass, tierOf } from './model.js';

const MAX_CHARTED = 6; // instances charted in the panel

// h builds an HTML element; strings become text nodes, never markup.
export function h(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) n.append(c);
  return n;
}

function tierBadge(tier) { return h('span', { class: `tier tier-${tier || 'none'}` }, tier || 'assessing'); }

// renderList fills tbody with a row per workload.
export function renderList(tbody, workloads, selected, select) {
  tbody.replaceChildren(...workloads.map((w) => {
    const name = w.metadata.name;
    const insts = instancesOf(w);
    const running = insts.filter((i) => i.state === 'running').length;
    const restarts = restartsOf(w);
    return h('tr', {
      class: name === selected ? 'selected' : '', 'data-workload': name, 'data-tier': tierOf(w), 'data-restarts': restarts,
      onclick: () => select(name),
    },
    h('td', {}, h('strong', {}, name)),
    h('td', {}, tierBadge(tierOf(w))),
    h('td', {}, segmentOf(w)),
    h('td', {}, `${running}/${insts.length} running`),
    h('td', { class: restarts > 0 ? 'restarts-hot' : '' }, String(restarts)));
  }));
  if (workloads.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'no workloads')));
}

function time(t) {
  if (!t) return '';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleTimeString([], { hour12: false });
}

function mib(n) { return n / 2 ** 20; }
function memText(n) { const m = mib(n); return `${m >= 100 ? m.toFixed(0) : m >= 10 ? m.toFixed(1) : m.toFixed(2)} MiB`; }
function memTick(n) { const m = mib(n); return m === 0 ? '0' : `${m >= 10 ? m.toFixed(0) : m.toFixed(1)}M`; }
function cpuTick(n) { return n === 0 ? '0' : n >= 1 ? n.toFixed(1) : String(Number(n.toPrecision(2))); }
function cpuText(n) { return `${n >= 1 ? n.toFixed(2) : Number(n.toPrecision(2))} cores`; }

// usageSection draws, per instance, a CPU chart (cores) and a memory chart from hist, the
// answer of the history endpoint ({data, error}).
export function usageSection(w, hist) {
  const kids = [h('h3', {}, 'Usage')];
  if (hist.error) return [...kids, h('div', { class: 'muted', id: 'usage-error' }, hist.error)];
  if (!hist.data) return [...kids, h('div', { class: 'muted' }, 'loading\u2026')];
  const byID = new Map((hist.data.instances || []).map((i) => [i.instance, i.points || []]));
  const ids = [...new Set([...instancesOf(w).map((i) => i.id), ...byID.keys()])].sort().slice(0, MAX_CHARTED);
  if (ids.length === 0) return [...kids, h('div', { class: 'muted' }, 'no instances to chart')];
  const every = hist.data.intervalSeconds ? `one point every ${hist.data.intervalSeconds} s, up to an hour` : '';
  if (every) kids.push(h('div', { class: 'muted' }, every));
  for (const id of ids) {
    const points = byID.get(id) || [];
    kids.push(h('div', { class: 'usage-row', 'data-usage': id },
      h('div', { class: 'usage-id mono' }, id),
      h('div', { class: 'charts' },
        lineChart({ kind: 'cpu', instance: id, title: 'CPU', pts: series(points, 'cpuCores'), format: cpuText, tick: cpuTick }),
        lineChart({ kind: 'memory', instance: id, title: 'memory', pts: series(points, 'memoryBytes'), format: memText, tick: memTick }))));
  }
  return kids;
}

// scalingSection shows a workload's spec.scaling and what the scaler decided
// (status.scaling): the replicas it wants and its last change with the reason. A workload
// without spec.scaling has none. data-scaling holds the replicas wanted ('' before the
// scaler's first decision), data-decision the last change as FROM->TO.
export function scalingSection(w) {
  const sc = (w.spec || {}).scaling;
  if (!sc) return [];
  const st = (w.status || {}).scaling || null;
  const last = st ? st.lastDecision : null;
  const cpu = ((w.spec || {}).resources || {}).cpu || '-';
  const policy = sc.predictive ? `predictive${sc.leadSeconds ? ` (lead ${sc.leadSeconds} s)` : ''}` : 'reactive';
  const cooldown = sc.scaleInCooldownSeconds ?? 300;
  return [h('h3', {}, 'Scaling'),
    h('div', { class: 'scaling', 'data-scaling': st ? st.replicas : '', 'data-policy': sc.predictive ? 'predictive' : 'reactive' },
      h('div', {}, `${policy} \u00b7 min ${sc.min || 1} \u00b7 max ${sc.max} \u00b7 target ${sc.targetCPUPercent || 70}% of cpu ${cpu} \u00b7 scale-in cooldown ${cooldown} s`),
      h('div', {}, st ? `${st.replicas} replica${st.replicas === 1 ? '' : 's'} wanted` : 'no decision yet'),
      last
        ? h('div', { class: 'scaling-last', 'data-decision': `${last.from}->${last.to}` },
          h('span', { class: 'time' }, time(last.time)), ` ${last.policy}: ${last.reason}`)
        : h('div', { class: 'muted' }, 'no change of the count yet'))];
}

// backupSection shows the workload's last scheduled backup (status.backup) and its last
// restore drill, from its DrillSucceeded / DrillFailed events. data-drill holds the
// drill's result (succeeded or failed, '' when there was none), data-backup the last
// backup's ID.
export function backupSection(w, events) {
  const bs = (w.status || {}).backup || null;
  const drills = events.filter((e) => e.reason === 'DrillSucceeded' || e.reason === 'DrillFailed');
  const drill = drills.length ? drills[drills.length - 1] : null;
  if (!bs && !drill && !((w.spec || {}).backup || {}).schedule) return [];
  const result = drill ? (drill.reason === 'DrillSucceeded' ? 'succeeded' : 'failed') : '';
  return [h('h3', {}, 'Backups'),
    h('div', { class: 'backup', 'data-backup': bs ? bs.lastBackupID || '' : '' },
      bs && bs.lastSuccess ? h('div', {}, h('span', { class: 'time' }, time(bs.lastSuccess)), ` last backup ${bs.lastBackupID}`)
        : h('div', { class: 'muted' }, 'no scheduled backup yet'),
      bs && bs.lastError ? h('div', { class: 'warn' }, `last attempt failed: ${bs.lastError}`) : null),
    h('div', { class: 'drill', 'data-drill': result },
      ...(drill ? [h('span', { class: 'time' }, time(drill.time)), h('span', { class: result === 'failed' ? 'warn' : '' }, ` drill ${result}`), ` ${drill.message}`]
        : [h('span', { class: 'muted' }, 'no restore drill yet')]))];
}

// renderPanel fills section with the panel of workload w. events are its events, newest
// last; logs is {instance, text, error}; hist is the usage history {data, error};
// choose(instance) picks whose log to show.
export function renderPanel(section, w, events, logs, handlers, hist = {}) {
  const name = w.metadata.name;
  const st = w.status || {};
  const insts = instancesOf(w);
  const reasons = st.reasons || [];
  const kids = [
    h('div', { class: 'panel-head' }, h('h2', {}, name), tierBadge(tierOf(w)),
      h('button', { type: 'button', onclick: handlers.close, 'aria-label': 'close' }, '\u00d7')),
    h('div', { class: 'muted' }, `segment ${segmentOf(w)} \u00b7 phase ${st.phase || 'unknown'} \u00b7 image ${w.spec.image || (w.spec.vm ? 'VM' : '-')}`),
    h('h3', {}, 'Why this tier'),
    reasons.length === 0
      ? h('div', { class: 'muted' }, 'no rule asked for more isolation than the default')
      : h('ul', { class: 'reasons', 'aria-label': 'assessment reasons' }, ...reasons.map((r) => h('li', { 'data-rule': r.rule },
        h('span', { class: 'rule' }, `${r.rule} \u2192 ${r.tier}${r.effect ? ' (' + r.effect + ')' : ''}`), h('br'), r.message))),
    ...scalingSection(w),
    ...backupSection(w, events),
    h('h3', {}, 'Instances'),
    insts.length === 0 ? h('div', { class: 'muted' }, 'no instances yet') : h('table', { class: 'inst-table', id: 'inst-table' },
      h('thead', {}, h('tr', {}, ...['id', 'state', 'ip', 'pid', '\u21bb'].map((c) => h('th', {}, c)))),
      h('tbody', {}, ...insts.map((i) => h('tr', { 'data-instance': i.id, 'data-state': i.state, 'data-restarts': i.restarts || 0 },
        h('td', { class: 'mono' }, i.id),
        h('td', {}, h('span', { class: `sdot state-${stateClass(i.state)}` }), ' ', i.state,
          i.message ? h('div', { class: 'inst-msg' }, i.message) : null),
        h('td', { class: 'mono' }, i.ip || '-'),
        h('td', { class: 'mono' }, i.pid ? String(i.pid) : '-'),
        h('td', { class: (i.restarts || 0) > 0 ? 'restarts-hot' : '' }, String(i.restarts || 0)))))),
    ...usageSection(w, hist),
    h('h3', {}, 'Recent events'),
    events.length === 0 ? h('div', { class: 'muted' }, 'none') : h('ul', { class: 'events' },
      ...events.slice(-12).reverse().map((e) => h('li', {},
        h('span', { class: 'time' }, time(e.time)),
        h('span', { class: e.type === 'Warning' ? 'warn' : '', 'data-count': e.count || 1 }, seriesText(e)), ' ',
        e.instance ? h('span', { class: 'mono' }, e.instance + ' ') : null, e.message))),
  ];
  const pick = h('select', { 'aria-label': 'instance', onchange: (ev) => handlers.choose(ev.target.value) },
    ...insts.map((i) => {
      const o = h('option', { value: i.id }, i.id);
      o.selected = i.id === logs.instance;
      return o;
    }));
  kids.push(h('div', { class: 'logs-head' }, h('h3', {}, 'Log (last lines)'), insts.length > 1 ? pick : null,
    h('button', { type: 'button', onclick: handlers.refreshLogs }, 'refresh')));
  if (logs.error) kids.push(h('div', { class: 'muted' }, logs.error));
  else kids.push(h('pre', { class: 'logs', id: 'logs' }, logs.text === undefined ? 'loading\u2026' : (logs.text || '(empty)')));
  section.replaceChildren(...kids);
  section.hidden = false;
  const pre = section.querySelector('.logs');
  if (pre) pre.scrollTop = pre.scrollHeight;
}
