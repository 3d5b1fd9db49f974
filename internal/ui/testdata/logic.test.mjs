// Tests of the dashboard's pure functions, run by TestScriptLogic (logic_test.go) with
// node --test on a copy of the assets. Nothing here touches a DOM.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { GoneError, parseSSE, watch } from './api.js';
import { niceMax, series } from './charts.js';
import { ageText, formatBytes, heartbeatAge, parseQuantity } from './hosts.js';
import { seriesText } from './model.js';
import { liveHost, planModel, readPlan, shapeText } from './plan.js';

test('parseSSE reads events, ids, comments and partial frames', () => {
  const cases = [
    {
      name: 'one event',
      in: 'event: ADDED\nid: 7\ndata: {"a":1}\n\n',
      events: [{ type: 'ADDED', id: '7', data: '{"a":1}' }], rest: '',
    },
    {
      name: 'keepalive comment only',
      in: ': keepalive\n\n', events: [], rest: '',
    },
    {
      name: 'a frame cut in the middle',
      in: 'event: MODIFIED\nid: 8\ndata: {"b"', events: [], rest: 'event: MODIFIED\nid: 8\ndata: {"b"',
    },
    {
      name: 'two events and the start of a third',
      in: 'event: ADDED\nid: 1\ndata: 1\n\n: keepalive\n\nevent: DELETED\nid: 2\ndata: 2\n\nevent: ADD',
      events: [{ type: 'ADDED', id: '1', data: '1' }, { type: 'DELETED', id: '2', data: '2' }], rest: 'event: ADD',
    },
    {
      name: 'CRLF line ends, several data lines, no space after the colon',
      in: 'event:ERROR\r\ndata:{"x":\r\ndata: 2}\r\n\r\n',
      events: [{ type: 'ERROR', data: '{"x":\n2}' }], rest: '',
    },
    {
      name: 'a CR at the end may be half of a CRLF',
      in: 'data: a\r\n\r', events: [], rest: 'data: a\r\n\r',
    },
    {
      name: 'no event name is a message; an event without data is dropped',
      in: 'data: hi\n\nevent: ADDED\nid: 3\n\n', events: [{ type: 'message', data: 'hi' }], rest: '',
    },
  ];
  for (const c of cases) {
    const got = parseSSE(c.in);
    assert.deepEqual(got.events, c.events, c.name);
    assert.equal(got.rest, c.rest, c.name);
  }
  // Fed in pieces, the frames come out the same as at once.
  const whole = 'event: ADDED\nid: 11\ndata: {"n":1}\n\n: keepalive\n\nevent: MODIFIED\r\nid: 12\r\ndata: {"n":2}\r\n\r\n';
  for (let cut = 1; cut < whole.length; cut++) {
    const a = parseSSE(whole.slice(0, cut));
    const b = parseSSE(a.rest + whole.slice(cut));
    assert.deepEqual([...a.events, ...b.events].map((e) => e.id), ['11', '12'], `cut at ${cut}`);
    assert.equal(b.rest, '', `cut at ${cut}`);
  }
});

test('watch reconnects from the last id with backoff', async () => {
  const calls = [];
  const waits = [];
  const script = [
    [{ type: 'ADDED', id: '5', object: { metadata: { name: 'a' } } }, { type: 'MODIFIED', id: '6', object: { metadata: { name: 'a' } } }],
    new Error('network'),
    [],
    [{ type: 'DELETED', id: '9', object: { metadata: { name: 'a' } } }],
    [{ type: 'ERROR', object: { code: 410 } }],
  ];
  async function* connect(resource, rv) {
    calls.push(rv);
    const step = script[calls.length - 1];
    if (step instanceof Error) throw step;
    yield { type: 'OPEN', sse: true };
    for (const ev of step) yield ev;
  }
  const seen = [];
  for await (const ev of watch('workloads', '4', undefined, { connect, sleep: async (ms) => { waits.push(ms); } })) seen.push(ev.type);
  assert.deepEqual(calls, ['4', '6', '6', '6', '9']);
  assert.deepEqual(waits, [250, 500, 1000, 250]);
  assert.deepEqual(seen, ['OPEN', 'ADDED', 'MODIFIED', 'CLOSED', 'CLOSED', 'OPEN', 'CLOSED', 'OPEN', 'DELETED', 'CLOSED', 'OPEN', 'ERROR']);
});

test('watch gives up on a watch too old', async () => {
  // eslint-disable-next-line require-yield
  async function* connect() { throw new GoneError('too old'); }
  await assert.rejects(async () => {
    for await (const ev of watch('events', '1', undefined, { connect, sleep: async () => {} })) assert.fail(`got ${ev.type}`);
  }, GoneError);
});

test('quantities, sizes and ages', () => {
  for (const [q, want] of [['2', 2], ['1500m', 1.5], ['3912Mi', 3912 * 2 ** 20], ['1Gi', 2 ** 30], ['0.5', 0.5], ['1e3', 1000], ['2k', 2000], [4, 4]]) {
    assert.equal(parseQuantity(q), want, String(q));
  }
  for (const bad of ['', 'abc', '2 cores', undefined]) assert.ok(Number.isNaN(parseQuantity(bad)), String(bad));
  assert.equal(formatBytes(768 * 2 ** 20), '768 MiB');
  assert.equal(formatBytes(3912 * 2 ** 20), '3.82 GiB');
  const now = Date.parse('2026-11-26T10:00:33Z');
  assert.equal(heartbeatAge('2026-11-26T10:00:30Z', now), 3);
  assert.ok(Number.isNaN(heartbeatAge('', now)));
  assert.equal(ageText(3), '3 s ago');
  assert.equal(ageText(600), '10 min ago');
  assert.equal(ageText(NaN), 'never');
});

test('chart helpers', () => {
  for (const [v, want] of [[0, 1], [0.012, 0.02], [0.1, 0.1], [0.11, 0.2], [3, 5], [7, 10], [1234567, 2000000]]) {
    assert.equal(niceMax(v), want, String(v));
  }
  const pts = series([
    { time: '2026-11-26T10:00:10Z', cpuCores: 0.2, memoryBytes: 2 },
    { time: '2026-11-26T10:00:00Z', cpuCores: 0.1, memoryBytes: 1 },
    { time: 'nonsense', cpuCores: 0.3 },
    { time: '2026-11-26T10:00:20Z' },
  ], 'cpuCores');
  assert.deepEqual(pts.map((p) => p.v), [0.1, 0.2]);
});

test('a plan is arranged by host and node', () => {
  const plan = readPlan(JSON.stringify({
    kind: 'PlacementPlan',
    nodes: [{ name: 'node-1', shape: 'large', host: 'h2', class: 'shop/internal/public' }, { name: 'node-2', shape: 'small', host: 'h2', class: 'default/untrusted/internal' }],
    placements: [
      { workload: 'web', replica: 1, tier: 'container', node: 'node-1', host: 'h2' },
      { workload: 'web', replica: 0, tier: 'container', node: 'node-1', host: 'h2' },
      { workload: 'ci', replica: 0, tier: 'sandbox', node: 'node-2', host: 'h2' },
      { workload: 'db', replica: 0, tier: 'vm', host: 'h1' },
      { workload: 'db', replica: 1, tier: 'vm', host: 'h3' },
    ],
    unplaced: [{ workload: 'gpu', replica: 1, reason: 'no host' }, { workload: 'gpu', replica: 0, reason: 'no host' }],
    summary: { hostsUsed: 3, nodes: 2, lowerBound: 2, gap: 0.5 },
    hosts: [{ name: 'h2', cpu: 0.5, memory: 0.25, nodes: 2, vms: 0 }, { name: 'h1', cpu: 0.1, memory: 0.1, nodes: 0, vms: 1 }],
  }));
  const m = planModel(plan);
  assert.deepEqual(m.hosts.map((x) => x.name), ['h2', 'h1', 'h3']);
  const h2 = m.hosts[0];
  assert.equal(h2.cpu, 0.5);
  assert.deepEqual(h2.nodes.map((n) => [n.name, n.groups.map((g) => `${g.workload}:${g.replicas.join(',')}`)]), [['node-1', ['web:0,1']], ['node-2', ['ci:0']]]);
  assert.deepEqual(m.hosts[1].vms.map((g) => g.workload), ['db']);
  assert.ok(Number.isNaN(m.hosts[2].cpu), 'a host without usage has none');
  assert.deepEqual(m.unplaced.map((u) => u.replica), [0, 1]);
  assert.throws(() => readPlan('{"kind":"Fleet"}'), /holds a Fleet, not a PlacementPlan/);
  assert.throws(() => readPlan('nope'), /not JSON/);
});

test("the daemon's node VMs are arranged like a plan's, beside the host's replicas", () => {
  const wl = (name, tier, instances) => ({ metadata: { name }, status: { tier, instances } });
  const workloads = [
    wl('shop-a', 'container', [{ id: 'shop-a-0', driver: 'nodevm' }, { id: 'shop-a-1', driver: 'nodevm' }]),
    wl('shop-b', 'sandbox', [{ id: 'shop-b-0', driver: 'nodevm' }, { id: 'shop-b-1', driver: 'nodevm' }]), // shop-b-1 not placed yet
    wl('web', 'container', [{ id: 'web-0', driver: 'containerd' }, { id: 'web-1', driver: 'containerd' }]),
    wl('db', 'vm', [{ id: 'db-0', driver: 'qemu', tier: 'vm' }]),
    wl('web-api', 'container', [{ id: 'web-api-0', driver: 'containerd' }]),
  ];
  const nodes = [
    { name: 'nodevm-bbbb', class: 'globex/internal/internal', state: 'running', shape: { cpu: '1', memory: '1Gi' }, usage: { cpu: '100m', memory: '32Mi' }, replicas: [{ id: 'shop-b-0', workload: 'shop-b' }] },
    { name: 'nodevm-aaaa', class: 'acme/internal/internal', state: 'running', shapeName: 'medium', shape: { cpu: '2', memory: '2Gi' }, usage: { cpu: '1', memory: '512Mi' }, replicas: [{ id: 'shop-a-1', workload: 'shop-a' }, { id: 'shop-a-0', workload: 'shop-a' }] },
  ];
  const host = { metadata: { name: 'h1' }, status: { capacity: { cpu: '4', memory: '8Gi' }, allocated: { cpu: '1', memory: '2Gi' } } };
  const x = liveHost('h1', host, nodes, workloads);
  assert.equal(x.name, 'h1');
  assert.equal(x.cpu, 0.25);
  assert.equal(x.memory, 0.25);
  assert.deepEqual(x.nodes.map((n) => [n.name, n.class, n.shape, n.groups.map((g) => `${g.workload}:${g.tier}:${g.replicas.join(',')}`)]), [
    ['nodevm-aaaa', 'acme/internal/internal', 'medium (2 CPU, 2Gi)', ['shop-a:container:0,1']],
    ['nodevm-bbbb', 'globex/internal/internal', '1 CPU, 1Gi', ['shop-b:sandbox:0']],
  ]);
  assert.equal(x.nodes[0].usage.cpu, 0.5);
  assert.equal(x.nodes[0].usage.memory, 0.25);
  assert.match(x.nodes[0].usage.text, /request 1 of 2 CPU, 512 MiB of 2 GiB/);
  // web-api-0 is web-api's replica 0, not web's; shop-b-1 is in no node VM yet and not on the host.
  assert.deepEqual(x.vms.map((g) => `${g.workload}:${g.tier}:${g.replicas.join(',')}`), ['db:vm:0', 'web:container:0,1', 'web-api:container:0']);

  const none = liveHost('this host', undefined, [], workloads.slice(2));
  assert.deepEqual(none.nodes, []);
  assert.ok(Number.isNaN(none.cpu), 'no Host object, no load');
  assert.equal(none.vms.length, 3);
  assert.equal(shapeText({ cpu: '1500m', memory: '768Mi' }), '1500m CPU, 768Mi');

  // A plan of strata plan --host carries each node VM's utilization.
  const m = planModel({ kind: 'PlacementPlan', nodes: [{ name: 'nodevm-aaaa', shape: '2 CPU, 2Gi', host: 'h1', class: 'acme/internal/internal', utilization: { cpu: 0.5, memory: 0.25 } }], placements: [] });
  assert.deepEqual(m.hosts[0].nodes[0].usage, { cpu: 0.5, memory: 0.25 });
});

test('seriesText shows a repeated event with its count and span', () => {
  assert.equal(seriesText({ reason: 'Started', time: '2026-01-01T00:00:00Z' }), 'Started');
  assert.equal(seriesText({ reason: 'FailedStart', count: 1, time: '2026-01-01T00:00:00Z', firstTime: '2026-01-01T00:00:00Z' }), 'FailedStart');
  assert.equal(seriesText({ reason: 'FailedStart', count: 37, time: '2026-01-01T00:12:00Z', firstTime: '2026-01-01T00:00:00Z' }),
    'FailedStart ×37 over 12 min');
  assert.equal(seriesText({ reason: 'FailedStart', count: 3, time: '2026-01-01T00:00:40Z', firstTime: '2026-01-01T00:00:00Z' }),
    'FailedStart ×3 over 40 s');
});
