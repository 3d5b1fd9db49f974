// hosts.js draws the host strip: a card per Host object (the daemon's own record of the
// machine it runs on, refreshed by its heartbeat) with its capacity against what its
// instances were given, its accelerator, its drivers and how old its last heartbeat is.
//
// Terms: capacity is what the host has (cpu in cores, memory in bytes); allocated is the sum
// of the resources of the instances placed on it. A heartbeat older than STALE_SECONDS means
// the daemon stopped reporting: the card says stale.

import { h } from './panel.js';

// STALE_SECONDS is the heartbeat age past which a host is shown stale (three heartbeats).
export const STALE_SECONDS = 30;

const SUFFIX = {
  m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

// parseQuantity reads a quantity in Kubernetes notation ("1500m", "2", "3912Mi", "1e3") as
// a number; NaN when it is not one.
export function parseQuantity(q) {
  if (typeof q === 'number') return q;
  const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?\s*$/.exec(String(q || ''));
  if (!m) return NaN;
  return Number(m[1]) * (m[2] ? SUFFIX[m[2]] : 1);
}

// formatBytes writes a byte count with a binary unit: "768 MiB", "3.8 GiB".
export function formatBytes(n) {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  const digits = v >= 100 || i === 0 ? 0 : v >= 10 ? 1 : 2;
  return `${Number(v.toFixed(digits))} ${units[i]}`;
}

// formatCores writes a number of cores: "1.5", "0.25", "0.012".
export function formatCores(n) {
  if (!Number.isFinite(n)) return '?';
  if (n === 0) return '0';
  const digits = Math.abs(n) >= 10 ? 1 : Math.abs(n) >= 1 ? 2 : 3;
  return String(Number(n.toFixed(digits)));
}

// heartbeatAge returns the seconds between the RFC 3339 time t and now (a Date or ms), or
// NaN when t is missing or unreadable.
export function heartbeatAge(t, now) {
  const at = Date.parse(t || '');
  if (Number.isNaN(at)) return NaN;
  return Math.max(0, Math.floor((Number(now) - at) / 1000));
}

// ageText writes an age in seconds as "3 s ago", "4 min ago", "2 h ago".
export function ageText(seconds) {
  if (!Number.isFinite(seconds)) return 'never';
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

// usageBar draws one resource's allocation against capacity: a bar and "used / total".
function usageBar(label, used, total, format) {
  const share = total > 0 && Number.isFinite(used) ? Math.min(1, Math.max(0, used / total)) : 0;
  const pct = Math.round(share * 100);
  const bar = h('div', {
    class: `meter${share > 0.9 ? ' hot' : ''}`, role: 'meter', 'aria-label': `${label} allocated`,
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct,
    'aria-valuetext': `${format(used)} of ${format(total)} (${pct}%)`,
  }, h('span', { class: 'fill' }));
  bar.firstChild.style.width = `${pct}%`; // a style attribute would be refused by the CSP
  return h('div', { class: 'usage', 'data-resource': label },
    h('div', { class: 'usage-head' }, h('span', { class: 'usage-label' }, label),
      h('span', { class: 'usage-num' }, `${format(used)} / ${format(total)}`)),
    bar);
}

function driverChip(d) {
  const ready = !!d.ready;
  const tiers = (d.tiers || []).join(', ');
  return h('li', {
    class: `driver ${ready ? 'ready' : 'not-ready'}`, 'data-driver': d.name, 'data-ready': String(ready),
    title: d.message || '', 'aria-label': `driver ${d.name}: ${ready ? 'ready' : 'not ready'}${d.message ? ', ' + d.message : ''}`,
  },
  h('span', { class: 'driver-dot', 'aria-hidden': 'true' }),
  h('span', { class: 'driver-name' }, d.name),
  tiers ? h('span', { class: 'driver-tiers' }, tiers) : null,
  h('span', { class: 'driver-state' }, ready ? 'ready' : 'not ready'),
  d.message ? h('span', { class: 'driver-msg' }, d.message) : null);
}

function heartbeatText(age, stale) {
  return `heartbeat ${ageText(age)}${stale && Number.isFinite(age) ? ' (stale)' : ''}`;
}

// hostCard builds the card of one Host at time now (ms).
export function hostCard(host, now) {
  const name = host.metadata.name;
  const st = host.status || {};
  const cap = st.capacity || {};
  const alloc = st.allocated || {};
  const age = heartbeatAge(st.lastHeartbeatTime, now);
  const stale = !(age <= STALE_SECONDS);
  const ready = !!st.ready && !stale;
  const accel = (st.accelerator || '').toLowerCase();
  const accelText = accel === 'kvm' ? 'KVM' : accel === 'tcg' ? 'TCG (software)' : (st.accelerator || 'none');
  return h('article', {
    class: `host-card${stale ? ' stale' : ''}`, 'data-host': name, 'data-ready': String(ready), 'data-stale': String(stale),
    'aria-label': `host ${name}`,
  },
  h('div', { class: 'host-head' },
    h('h2', {}, name),
    h('span', { class: `host-state ${ready ? 'ok' : 'bad'}` }, stale ? 'stale' : ready ? 'ready' : 'not ready'),
    h('span', {
      class: 'heartbeat', 'data-heartbeat-age': Number.isFinite(age) ? age : '',
      title: st.lastHeartbeatTime || 'no heartbeat yet',
    }, heartbeatText(age, stale))),
  h('div', { class: 'host-facts' },
    h('span', { class: `accel accel-${accel || 'none'}`, 'data-accelerator': accel, title: 'how VMs run on this host' }, `VMs: ${accelText}`),
    h('span', {}, `${st.instances || 0} instance${st.instances === 1 ? '' : 's'}`),
    st.kernel ? h('span', { class: 'mono' }, `kernel ${st.kernel}`) : null,
    st.arch ? h('span', { class: 'mono' }, st.arch) : null,
    st.version ? h('span', { class: 'mono' }, `strata ${st.version}`) : null),
  h('div', { class: 'host-usage' },
    usageBar('cpu', parseQuantity(alloc.cpu || 0), parseQuantity(cap.cpu), (n) => `${formatCores(n)} cores`),
    usageBar('memory', parseQuantity(alloc.memory || 0), parseQuantity(cap.memory), formatBytes)),
  h('ul', { class: 'drivers', 'aria-label': 'drivers' }, ...(st.drivers || []).map(driverChip)));
}

// renderHosts fills section with a card per host, sorted by name; note is shown instead
// when there are none.
export function renderHosts(section, hosts, now, note) {
  const sorted = [...hosts].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (sorted.length === 0) {
    section.replaceChildren(h('div', { class: 'muted host-none' }, note || 'No host reported yet.'));
    return;
  }
  section.replaceChildren(...sorted.map((x) => hostCard(x, now)));
}

// tickHeartbeats brings the heartbeat ages drawn in section up to now, without redrawing
// the cards; it returns false when a card must be drawn anew (it turned stale, or fresh).
export function tickHeartbeats(section, hosts, now) {
  for (const host of hosts) {
    const card = section.querySelector(`[data-host="${CSS.escape(host.metadata.name)}"]`);
    const beat = card && card.querySelector('.heartbeat');
    if (!beat) return false;
    const age = heartbeatAge((host.status || {}).lastHeartbeatTime, now);
    const stale = !(age <= STALE_SECONDS);
    if (String(stale) !== card.dataset.stale) return false;
    beat.textContent = heartbeatText(age, stale);
    beat.dataset.heartbeatAge = Number.isFinite(age) ? age : '';
  }
  return true;
}
