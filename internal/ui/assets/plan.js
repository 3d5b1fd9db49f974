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
//
// The Host view draws the daemon's own node VMs with the same boxes (liveHost, hostBox): the
// node VMs the daemon runs (GET /apis/strata.dev/v1alpha1/nodes) with their class, shape and
// usage, and the replicas that run on the host's kernel beside them.

import { formatBytes, formatCores, parseQuantity } from './hosts.js';
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
    if (n.utilization) node.usage = { cpu: n.utilization.cpu, memory: n.utilization.memory }; // strata plan --host
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

// nodeBox draws a node VM: name, shape, class, and the replicas it holds. A node VM with a
// usage (the daemon's, or a plan of strata plan --host) has a bar each for the CPU and memory
// its replicas request of its shape.
function nodeBox(n) {
  const reps = n.groups.reduce((k, g) => k + g.replicas.length, 0);
  const used = n.usage && (Number.isFinite(n.usage.cpu) || Number.isFinite(n.usage.memory));
  return h('div', {
    class: `plan-node${n.state && n.state !== 'running' ? ' node-down' : ''}`, 'data-plan-node': n.name, 'data-shape': n.shape, 'data-class': n.class,
    'data-state': n.state || null,
    role: 'group', 'aria-label': `node VM ${n.name}, shape ${n.shape}, class ${n.class}, ${reps} replica${reps === 1 ? '' : 's'}`,
  },
  h('div', { class: 'plan-node-head' }, h('strong', {}, n.name), h('span', { class: 'shape' }, n.shape),
    n.state && n.state !== 'running' ? h('span', { class: 'node-state' }, n.state) : null),
  h('div', { class: 'plan-class mono', title: 'isolation class: tenant/trust/data, or placement.isolationClass' }, n.class),
  used ? h('div', { class: 'utils node-utils', title: n.usage.text || 'what its replicas request of its shape' },
    utilBar('cpu', n.usage.cpu), utilBar('memory', n.usage.memory)) : null,
  reps ? h('ul', { class: 'replicas' }, ...n.groups.map(replicaChip)) : h('div', { class: 'muted' }, 'no replicas'));
}

// hostBox draws a host: its load, its node VMs, and the replicas that run on it without a
// node VM (in a plan the VMs; on the live host also the containers and sandboxes on its
// kernel: live is true).
export function hostBox(x, live = false) {
  const vms = x.vms.reduce((k, g) => k + g.replicas.length, 0);
  const what = live ? `${vms} on the host's kernel` : `${vms} VM${vms === 1 ? '' : 's'}`;
  return h('section', {
    class: 'plan-host', 'data-plan-host': x.name, role: 'group',
    'aria-label': `host ${x.name}: ${x.nodes.length} node VM${x.nodes.length === 1 ? '' : 's'}, ${what}`,
  },
  h('div', { class: 'plan-host-head' }, h('h3', {}, x.name),
    h('span', { class: 'muted' }, `${x.nodes.length} node VM${x.nodes.length === 1 ? '' : 's'} \u00b7 ${what}`)),
  h('div', { class: 'utils' }, utilBar('cpu', x.cpu), utilBar('memory', x.memory)),
  x.nodes.length ? h('div', { class: 'plan-nodes' }, ...x.nodes.map(nodeBox)) : null,
  x.vms.length ? h('div', { class: 'plan-onhost' },
    live ? h('div', { class: 'plan-onhost-label muted' }, "on the host's kernel") : null,
    h('ul', { class: 'replicas plan-vms', 'aria-label': live ? "replicas on the host's kernel" : 'VMs on the host' }, ...x.vms.map((g) => {
      const chip = replicaChip(g);
      chip.setAttribute('data-plan-vm', g.workload);
      return chip;
    }))) : null);
}

// replicaOf is the replica number of instance id of workload ("web-2" of web: 2), NaN when
// the ID is not the workload's.
function replicaOf(id, workload) {
  const rest = String(id).startsWith(`${workload}-`) ? String(id).slice(workload.length + 1) : '';
  return /^\d+$/.test(rest) ? Number(rest) : NaN;
}

// shareOf is used of total, two quantities; NaN when either is missing.
function shareOf(used, total) {
  const u = parseQuantity(used || 0); const t = parseQuantity(total);
  return t > 0 && Number.isFinite(u) ? u / t : NaN;
}

// shapeText writes a node VM's shape (a capacity) as strata plan --host names it: "1 CPU, 1Gi".
export function shapeText(shape) {
  const s = shape || {};
  return `${s.cpu || '?'} CPU, ${s.memory || '?'}`;
}

// liveHost arranges what runs on the daemon's host for hostBox: name labels it, host is its
// Host object (for the load: allocated over capacity; may be undefined), nodes are the node
// VMs of GET .../nodes, workloads the Workload objects. Each node VM holds the replicas it
// reports; every other instance runs on the host's kernel (or as a VM of its own), except
// one the nodevm driver runs that no node VM lists yet (it is being placed).
export function liveHost(name, host, nodes, workloads) {
  const tiers = new Map(workloads.map((w) => [w.metadata.name, (w.status && w.status.tier) || '']));
  const inNode = new Set();
  const outNodes = [...nodes].sort((a, b) => String(a.name).localeCompare(String(b.name))).map((n) => {
    const placements = (n.replicas || []).map((r) => {
      inNode.add(r.id);
      const workload = r.workload || r.id;
      return { workload, replica: replicaOf(r.id, workload), tier: tiers.get(workload) || 'container' };
    });
    const shape = n.shape || {}; const usage = n.usage || {};
    return {
      name: n.name, class: n.class, state: n.state, shape: n.shapeName ? `${n.shapeName} (${shapeText(shape)})` : shapeText(shape),
      groups: groupReplicas(placements),
      usage: {
        cpu: shareOf(usage.cpu, shape.cpu), memory: shareOf(usage.memory, shape.memory),
        text: `its replicas request ${formatCores(parseQuantity(usage.cpu || 0))} of ${formatCores(parseQuantity(shape.cpu))} CPU, ` +
          `${formatBytes(parseQuantity(usage.memory || 0))} of ${formatBytes(parseQuantity(shape.memory))}`,
      },
    };
  });
  const onHost = [];
  for (const w of workloads) {
    const wl = w.metadata.name;
    for (const i of (w.status && w.status.instances) || []) {
      if (inNode.has(i.id) || i.driver === 'nodevm') continue;
      onHost.push({ workload: wl, replica: replicaOf(i.id, wl), tier: i.tier || tiers.get(wl) || '' });
    }
  }
  const st = (host && host.status) || {};
  const cap = st.capacity || {}; const alloc = st.allocated || {};
  return {
    name, cpu: shareOf(alloc.cpu, cap.cpu), memory: shareOf(alloc.memory, cap.memory),
    nodes: outNodes, vms: groupReplicas(onHost),
  };
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
