// model.js turns the API's objects into what the page draws: the segments (declared by a
// Segment object, or implicit: the default one and names workloads use without an object),
// the workloads in each, and the flows allowed between segments.

// segmentOf returns the segment a workload is on.
export function segmentOf(w) { return (w.spec && w.spec.segment) || 'default'; }

// tierOf returns a workload's assessed tier, or '' before the assessment.
export function tierOf(w) { return (w.status && w.status.tier) || ''; }

// instancesOf returns a workload's instances.
export function instancesOf(w) { return (w.status && w.status.instances) || []; }

// restartsOf returns the restarts of all a workload's instances.
export function restartsOf(w) { return instancesOf(w).reduce((n, i) => n + (i.restarts || 0), 0); }

// stateClass maps an instance state to one of the four states the page colors.
export function stateClass(state) {
  switch (state) {
    case 'running': return 'running';
    case 'exited': case 'stopped': return 'exited';
    case 'failed': case 'oomkilled': case 'crashloop': return 'failed';
    case 'creating': case 'created': case 'pending': case 'starting': case 'stopping': return 'creating';
    default: return 'unknown';
  }
}

// segmentViews lists the segments to draw, sorted by name, each with its workloads. The
// default segment appears when workloads use it, a Segment declares it, or a flow names it.
export function segmentViews(segments, workloads) {
  const byName = new Map();
  const implicit = (name) => ({ name, declared: false, subnet: '', gateway: '', egress: 'allow', allow: [], workloads: [] });
  for (const w of workloads) {
    const s = segmentOf(w);
    if (!byName.has(s)) byName.set(s, implicit(s));
  }
  for (const s of segments) {
    const spec = s.spec || {};
    const st = s.status || {};
    byName.set(s.metadata.name, {
      name: s.metadata.name, declared: true,
      subnet: st.subnet || spec.subnet || '', gateway: st.gateway || '',
      egress: spec.egress || 'allow', allow: spec.allow || [], workloads: [],
    });
  }
  const named = new Set();
  for (const v of byName.values()) for (const a of v.allow) named.add(a.from && a.from.segment);
  if (named.has('default') && !byName.has('default')) byName.set('default', implicit('default'));
  for (const w of workloads) byName.get(segmentOf(w)).workloads.push(w);
  for (const v of byName.values()) v.workloads.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

// portLabel writes a flow's ports as "tcp/8080, udp/53", or "all ports".
export function portLabel(ports) {
  if (!ports || ports.length === 0) return 'all ports';
  const seen = [...new Set(ports.map((p) => `${(p.protocol || 'tcp').toLowerCase()}/${p.port}`))];
  return seen.sort().join(', ');
}

// flows lists the allowed flows between the segments of views: {from, to, label}, one per
// pair, from the allow rules of the destination. Rules naming a segment that does not
// exist are left out (the host admits nothing from it yet).
export function flows(views) {
  const names = new Set(views.map((v) => v.name));
  const out = [];
  for (const to of views) {
    const byFrom = new Map();
    for (const a of to.allow) {
      const from = a.from && a.from.segment;
      if (!from || from === to.name || !names.has(from)) continue;
      const cur = byFrom.get(from);
      if (cur === 'all') continue;
      if (!a.ports || a.ports.length === 0) byFrom.set(from, 'all');
      else byFrom.set(from, [...(cur || []), ...a.ports]);
    }
    for (const [from, ports] of byFrom) {
      out.push({ from, to: to.name, label: ports === 'all' ? 'all ports' : portLabel(ports) });
    }
  }
  return out.sort((a, b) => (a.from + '>' + a.to).localeCompare(b.from + '>' + b.to));
}

// seriesText is an event's reason, with its count and span when it repeated (a series):
// "FailedStart ×37 over 12 min".
export function seriesText(e) {
  if (!(e.count > 1) || !e.firstTime) return e.reason;
  const secs = Math.max(0, Math.round((Date.parse(e.time) - Date.parse(e.firstTime)) / 1000));
  const span = secs < 90 ? `${secs} s` : secs < 90 * 60 ? `${Math.round(secs / 60)} min` : `${Math.round(secs / 3600)} h`;
  return `${e.reason} ×${e.count} over ${span}`;
}
