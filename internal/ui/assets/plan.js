// plan.js shows a placement plan, the JSON that `strata plan -f WORKLOADS --fleet FLEET -o json`
// prints: each host the plan uses as a box with its utilization, the node VMs on it (shape and
// isolation class) holding their container and sandbox replicas, the VM replicas that run on
// the host directly, the replicas that could not be placed with the reason, and the summary.
//
// The file is read in the browser (file picker or drag and drop) and never sent anywhere.
//
// Terms, as in `strata plan`: a node VM is a VM the plan creates from one of the fleet's node
// shapes to hold replicas of a single isolation class; a VM replica is a workload of the vm
// tier, placed on a host without a node; the lower bound is a number of hosts no plan can go
// below, and the gap is how far the plan's hosts are above it.

import { h } from './panel.js';

// readPlan parses text as a placement plan; it throws an Error saying what is wrong.
export function readPlan(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`this file is not JSON (${err.message}): make a plan with strata plan -f WORKLOADS --fleet FLEET -o json`);
  }
  if (!doc || typeof doc !== 'object' || doc.kind !== 'PlacementPlan') {
    const kind = doc && typeof doc === 'object' && doc.kind ? `a ${doc.kind}` : 'no kind';
    throw new Error(`this file holds ${kind}, not a PlacementPlan: make one with strata plan -f WORKLOADS --fleet FLEET -o json`);
  }
  return doc;
}

// groupReplicas turns placements into [{workload, tier, replicas: [n...]}], by workload name.
function groupReplicas(placements) {
  const by = new Map();
  for (const p of placements) {
    const g = by.get(p.workload) || { workload: p.workload, tier: p.tier, replicas: [] };
    g.replicas.push(p.replica);
    by.set(p.workload, g);
  }
  const out = [...by.values()].sort((a, b) => a.workload.localeCompare(b.workload));
  for (const g of out) g.replicas.sort((a, b) => a - b);
  return out;
}

// planModel arranges a plan for drawing: {hosts: [{name, cpu, memory, nodes: [{name, shape,
// class, groups}], vms: groups}], unplaced, summary}. Hosts come in the plan's order (its
// hosts field, the fleet's order); hosts named only by nodes or placements follow, sorted.
export function planModel(plan) {
  const hosts = new Map();
  const host = (name) => {
    if (!hosts.has(name)) hosts.set(name, { name, cpu: NaN, memory: NaN, nodes: [], vms: [], byNode: new Map(), vmPlacements: [] });
    return hosts.get(name);
  };
  for (const u of plan.hosts || []) Object.assign(host(u.name), { cpu: u.cpu, memory: u.memory });
  const extra = new Set();
  for (const n of plan.nodes || []) if (!hosts.has(n.host)) extra.add(n.host);
  for (const p of plan.placements || []) if (p.host && !hosts.has(p.host)) extra.add(p.host);
  for (const name of [...extra].sort()) host(name);
  const nodeHost = new Map();
  for (const n of plan.nodes || []) {
    const x = host(n.host);
    const node = { name: n.name, shape: n.shape, class: n.class, placements: [], groups: [] };
    x.nodes.push(node);
    x.byNode.set(n.name, node);
    nodeHost.set(n.name, x);
  }
  for (const p of plan.placements || []) {
    if (p.node) {
      const x = nodeHost.get(p.node) || host(p.host);
      let node = x.byNode.get(p.node);
      if (!node) { // a node the plan does not list: draw it anyway
        node = { name: p.node, shape: '?', class: '?', placements: [], groups: [] };
        x.nodes.push(node);
        x.byNode.set(p.node, node);
      }
      node.placements.push(p);
    } else if (p.host) {
      host(p.host).vmPlacements.push(p);
    }
  }
  const out = [];
  for (const x of hosts.values()) {
    for (const n of x.nodes) n.groups = groupReplicas(n.placements);
    out.push({ name: x.name, cpu: x.cpu, memory: x.memory, nodes: x.nodes, vms: groupReplicas(x.vmPlacements) });
  }
  const unplaced = [...(plan.unplaced || [])].sort((a, b) => a.workload.localeCompare(b.workload) || a.replica - b.replica);
  return { hosts: out, unplaced, summary: plan.summary || {} };
}

function pct(share) { return Number.isFinite(share) ? `${Math.round(share * 100)}%` : '?'; }

function utilBar(label, share) {
  const v = Number.isFinite(share) ? Math.min(1, Math.max(0, share)) : 0;
  const bar = h('div', {
    class: `meter${v > 0.9 ? ' hot' : ''}`, role: 'meter', 'aria-label': `${label} used`,
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(v * 100),
  }, h('span', { class: 'fill' }));
  bar.firstChild.style.width = `${Math.round(v * 100)}%`;
  return h('div', { class: 'util', 'data-resource': label },
    h('span', { class: 'util-label' }, label), bar, h('span', { class: 'util-num' }, pct(share)));
}

function replicaChip(g) {
  const n = g.replicas.length;
  const which = g.replicas.join(', ');
  return h('li', {
    class: `replica tier-${g.tier || 'none'}`, 'data-workload': g.workload, 'data-replicas': n,
    title: `${g.workload} replica${n === 1 ? '' : 's'} ${which} (${g.tier})`,
  }, g.workload, n > 1 ? h('span', { class: 'count' }, `\u00d7${n}`) : ` #${g.replicas[0]}`);
}

function nodeBox(n) {
  const reps = n.groups.reduce((k, g) => k + g.replicas.length, 0);
  return h('div', {
    class: 'plan-node', 'data-plan-node': n.name, 'data-shape': n.shape, 'data-class': n.class,
    role: 'group', 'aria-label': `node VM ${n.name}, shape ${n.shape}, class ${n.class}, ${reps} replica${reps === 1 ? '' : 's'}`,
  },
  h('div', { class: 'plan-node-head' }, h('strong', {}, n.name), h('span', { class: 'shape' }, n.shape)),
  h('div', { class: 'plan-class mono', title: 'isolation class: tenant/trust/data, or placement.isolationClass' }, n.class),
  h('ul', { class: 'replicas' }, ...n.groups.map(replicaChip)));
}

function hostBox(x) {
  const vms = x.vms.reduce((k, g) => k + g.replicas.length, 0);
  return h('section', {
    class: 'plan-host', 'data-plan-host': x.name, role: 'group',
    'aria-label': `host ${x.name}: ${x.nodes.length} node VM${x.nodes.length === 1 ? '' : 's'}, ${vms} VM${vms === 1 ? '' : 's'}`,
  },
  h('div', { class: 'plan-host-head' }, h('h3', {}, x.name),
    h('span', { class: 'muted' }, `${x.nodes.length} node${x.nodes.length === 1 ? '' : 's'} \u00b7 ${vms} VM${vms === 1 ? '' : 's'}`)),
  h('div', { class: 'utils' }, utilBar('cpu', x.cpu), utilBar('memory', x.memory)),
  x.nodes.length ? h('div', { class: 'plan-nodes' }, ...x.nodes.map(nodeBox)) : null,
  x.vms.length ? h('ul', { class: 'replicas plan-vms', 'aria-label': 'VMs on the host' }, ...x.vms.map((g) => {
    const chip = replicaChip(g);
    chip.setAttribute('data-plan-vm', g.workload);
    return chip;
  })) : null);
}

function summaryLine(s) {
  const items = [
    ['hosts used', `${s.hostsUsed ?? '?'}${s.hostsAvailable ? ' of ' + s.hostsAvailable : ''}`],
    ['node VMs', s.nodes ?? '?'],
    ['lower bound', s.lowerBound ?? '?'],
    ['gap', Number.isFinite(s.gap) ? pct(s.gap) : '?'],
  ];
  if (s.replicas !== undefined) items.push(['replicas placed', `${s.placed ?? '?'} of ${s.replicas}`]);
  if (s.utilization) items.push(['utilization', `cpu ${pct(s.utilization.cpu)}, memory ${pct(s.utilization.memory)}`]);
  return h('dl', { class: 'plan-summary', id: 'plan-summary' }, ...items.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-summary': k }, String(v))]));
}

// renderPlan fills section with the drawing of model (from planModel); name is the file's.
export function renderPlan(section, model, name) {
  const kids = [
    h('div', { class: 'card-head' }, h('h2', {}, 'Plan'), h('span', { class: 'hint' }, name)),
    summaryLine(model.summary),
    h('div', { class: 'plan-hosts' }, ...model.hosts.map(hostBox)),
  ];
  if (model.hosts.length === 0) kids.push(h('div', { class: 'muted' }, 'the plan uses no host'));
  kids.push(h('h3', {}, `Unplaced replicas (${model.unplaced.length})`));
  kids.push(model.unplaced.length === 0
    ? h('div', { class: 'muted' }, 'every replica has a place')
    : h('ul', { class: 'unplaced', id: 'plan-unplaced' }, ...model.unplaced.map((u) => h('li', { 'data-unplaced': `${u.workload}/${u.replica}` },
      h('strong', {}, `${u.workload} #${u.replica}`), ' ', u.reason))));
  kids.push(h('div', { class: 'plan-legend', 'aria-hidden': 'true' },
    h('span', { class: 'legend-title' }, 'Legend'),
    h('span', { class: 'plan-node' }, 'node VM'), 'holds replicas of one isolation class',
    h('span', { class: 'replica tier-container' }, 'container'),
    h('span', { class: 'replica tier-sandbox' }, 'sandbox'),
    h('span', { class: 'replica tier-vm' }, 'VM on the host'),
    '\u00d7N: replicas of one workload'));
  section.replaceChildren(...kids);
}
