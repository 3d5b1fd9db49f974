// topology.js draws the host as an SVG: a frame for the host, labelled with its name, a zone
// per segment with its workloads as cards (drawn by tier), instance dots colored by state,
// the flows allowed between segments as arrows labelled with their ports, and egress to the
// outside node.

import { flows, instancesOf, restartsOf, stateClass, tierOf } from './model.js';

const NS = 'http://www.w3.org/2000/svg';
const P = 20; // outer padding
const CW = 176; const CH = 76; const G = 12; // card width, height, gap
const ZP = 14; const ZH = 54; // zone padding, zone header height
const ZG = 40; // gap between zones
const OW = 190; const OH = 40; // the outside node

function el(tag, attrs = {}, ...children) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) n.setAttribute(k, String(v));
  for (const c of children) n.append(c);
  return n;
}

function text(x, y, cls, s, attrs = {}) { return el('text', { x, y, class: cls, ...attrs }, s); }

function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + '\u2026' : s; }

// render redraws svg for views (from segmentViews); select(name) is called on a click.
// hostName labels the host's frame ("host" until the daemon reported it).
export function render(svg, views, selected, select, hostName) {
  svg.replaceChildren();
  if (views.length === 0) return false;
  const cols = views.length <= 2 ? 2 : 1;
  const zw = cols * CW + (cols - 1) * G + 2 * ZP;
  const rows = Math.max(1, ...views.map((v) => Math.ceil(v.workloads.length / cols)));
  const zh = ZH + rows * (CH + G) - G + ZP;
  const fl = flows(views);
  const hostX = P; const hostY = P + OH + 44;
  const zoneY = hostY + 38;
  const hostW = views.length * zw + (views.length - 1) * ZG + 2 * 18;
  const flowDepth = (k) => 34 + k * 30;
  const hostH = 38 + zh + (fl.length ? flowDepth(fl.length - 1) * 0.75 + 14 : 0) + 16;
  const width = Math.max(hostW + 2 * P, OW + 2 * P);
  const height = hostY + hostH + P;
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', width); // drawn at its size, shrunk (never grown) to fit
  svg.setAttribute('height', height);

  svg.append(el('defs', {},
    el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      el('path', { d: 'M0 0 L10 5 L0 10 Z', class: 'flow-head' })),
    el('marker', { id: 'arrow-egress', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' },
      el('path', { d: 'M0 0 L10 5 L0 10 Z', class: 'egress-head' }))));

  // The outside node and the host frame.
  const ox = (width - OW) / 2; const oy = P;
  svg.append(el('g', { 'data-node': 'outside' },
    el('rect', { x: ox, y: oy, width: OW, height: OH, rx: 20, class: 'outside' }),
    text(width / 2, oy + 25, 'outside-label', 'outside the host', { 'text-anchor': 'middle' })));
  svg.append(el('g', { 'data-host-frame': hostName || '' },
    el('title', {}, hostName ? `host ${hostName}` : 'this host'),
    el('rect', { x: hostX, y: hostY, width: width - 2 * P, height: hostH, rx: 12, class: 'host-frame' }),
    text(hostX + 14, hostY + 22, 'host-label', hostName ? `host ${clip(hostName, 60)}` : 'host')));

  const zoneX = new Map();
  const x0 = hostX + (width - 2 * P - hostW) / 2 + 18;
  const egress = el('g', { class: 'egress-layer' });
  svg.append(egress);
  views.forEach((v, i) => {
    const zx = x0 + i * (zw + ZG);
    zoneX.set(v.name, zx);
    svg.append(drawZone(v, zx, zoneY, zw, zh, cols, selected, select));
    if (v.egress !== 'deny') {
      const sx = zx + zw / 2;
      const tx = ox + OW / 2 + (views.length > 1 ? ((i / (views.length - 1)) - 0.5) * (OW - 40) : 0);
      egress.append(el('path', {
        d: `M${sx} ${zoneY} C${sx} ${zoneY - 50} ${tx} ${oy + OH + 40} ${tx} ${oy + OH + 2}`,
        class: 'egress', 'marker-end': 'url(#arrow-egress)', 'data-egress': v.name,
      }));
    }
  });

  // Flows: arcs below the zones, from the source zone to the destination zone.
  const bottom = zoneY + zh;
  fl.forEach((f, k) => {
    const fx = zoneX.get(f.from) + zw / 2; const tx = zoneX.get(f.to) + zw / 2;
    const dir = tx > fx ? 1 : -1;
    const sx = fx + dir * (18 + 10 * (k % 3)); const ex = tx - dir * (18 + 10 * (k % 3));
    const d = flowDepth(k);
    const label = f.label;
    const lw = label.length * 6.6 + 16; const lx = (sx + ex) / 2; const ly = bottom + d * 0.75;
    svg.append(el('g', { class: 'flow-group', 'data-flow': `${f.from}->${f.to}` },
      el('title', {}, `${f.from} may reach ${f.to} on ${label}`),
      el('path', { d: `M${sx} ${bottom} C${sx} ${bottom + d} ${ex} ${bottom + d} ${ex} ${bottom + 2}`, class: 'flow', 'marker-end': 'url(#arrow)' }),
      el('rect', { x: lx - lw / 2, y: ly - 10, width: lw, height: 20, rx: 10, class: 'flow-label-bg' }),
      text(lx, ly + 4, 'flow-label', label, { 'text-anchor': 'middle' })));
  });
  return true;
}

function drawZone(v, x, y, w, h, cols, selected, select) {
  const g = el('g', { class: 'zone-group', 'data-segment': v.name });
  g.append(el('rect', { x, y, width: w, height: h, rx: 10, class: v.declared ? 'zone' : 'zone implicit' }));
  g.append(text(x + ZP, y + 22, 'zone-name', clip(v.name, 30)));
  const meta = [v.subnet || (v.declared ? 'subnet pending' : 'implicit segment')];
  if (v.declared && v.subnet && v.gateway) {
    g.append(el('title', {}, `${v.name}: ${v.subnet}, gateway ${v.gateway}`));
    if (w > 300) meta.push('gw ' + v.gateway); // a narrow zone has no room for it
  }
  meta.push(`${v.workloads.length} workload${v.workloads.length === 1 ? '' : 's'}`);
  g.append(text(x + ZP, y + 40, 'zone-meta', meta.join(' \u00b7 ')));
  if (v.egress === 'deny') g.append(text(x + w - ZP, y + 22, 'zone-deny', 'egress denied', { 'text-anchor': 'end' }));
  if (v.workloads.length === 0) g.append(text(x + w / 2, y + ZH + CH / 2, 'zone-meta', 'no workloads', { 'text-anchor': 'middle' }));
  v.workloads.forEach((wl, i) => {
    const cx = x + ZP + (i % cols) * (CW + G);
    const cy = y + ZH + Math.floor(i / cols) * (CH + G);
    g.append(drawCard(wl, cx, cy, selected, select));
  });
  return g;
}

function drawCard(w, x, y, selected, select) {
  const name = w.metadata.name;
  const tier = tierOf(w);
  const insts = instancesOf(w);
  const restarts = restartsOf(w);
  const g = el('g', {
    class: `wcard tier-${tier || 'none'}${name === selected ? ' selected' : ''}`,
    'data-workload': name, 'data-tier': tier, 'data-restarts': restarts, tabindex: 0, role: 'button',
  });
  g.append(el('title', {}, `${name}: ${tier || 'not assessed yet'}, ${insts.length} instance(s), ${restarts} restart(s)`));
  g.append(el('rect', { x, y, width: CW, height: CH, rx: 7, class: 'wbox' }));
  let room = 21;
  if (tier === 'vm') {
    g.append(el('rect', { x: x + 4, y: y + 4, width: CW - 8, height: CH - 8, rx: 4, class: 'wbox-inner' }));
    g.append(el('rect', { x: x + CW - 36, y: y + 9, width: 26, height: 15, rx: 3, class: 'badge-vm' }));
    g.append(text(x + CW - 23, y + 20, 'badge-vm-text', 'VM', { 'text-anchor': 'middle' }));
    room = 17;
  } else if (tier === 'sandbox') {
    const sx = x + CW - 24; const sy = y + 8;
    g.append(el('path', { class: 'shield', d: `M${sx + 7} ${sy} L${sx + 14} ${sy + 3} L${sx + 14} ${sy + 8} C${sx + 14} ${sy + 12} ${sx + 11} ${sy + 15} ${sx + 7} ${sy + 17} C${sx + 3} ${sy + 15} ${sx} ${sy + 12} ${sx} ${sy + 8} L${sx} ${sy + 3} Z` }));
    room = 18;
  }
  g.append(text(x + 11, y + 22, 'wname', clip(name, room)));
  const phase = (w.status && w.status.phase) || '';
  const label = { container: 'container', sandbox: 'sandbox \u00b7 gVisor', vm: 'virtual machine' }[tier] || 'assessing';
  g.append(text(x + 11, y + 39, 'wmeta', phase ? `${label} \u00b7 ${phase}` : label));
  insts.slice(0, 9).forEach((in_, i) => {
    g.append(el('circle', {
      cx: x + 16 + i * 15, cy: y + 58, r: 5.5, class: `inst state-${stateClass(in_.state)}`,
      'data-instance': in_.id, 'data-state': in_.state, 'data-restarts': in_.restarts || 0,
    }, el('title', {}, `${in_.id}: ${in_.state}${in_.ip ? ' ' + in_.ip : ''}, ${in_.restarts || 0} restart(s)`)));
  });
  if (insts.length > 9) g.append(text(x + 16 + 9 * 15, y + 62, 'wmeta', `+${insts.length - 9}`));
  if (insts.length === 0) g.append(text(x + 11, y + 62, 'wmeta', 'no instances'));
  if (restarts > 0) g.append(text(x + CW - 10, y + 62, 'wrestarts', `\u21bb ${restarts}`, { 'text-anchor': 'end' }));
  g.addEventListener('click', () => select(name));
  g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') select(name); });
  return g;
}
