/** Which servers a deployment wants, and the keep / replace / create rule a deploy applies to the ones it finds (pure). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { serverName, type Server, type ServerState } from '@adt/providers';
import type { FleetRole } from '@adt/firewall';
import { decideServers, wantedServers, type FoundServer, type WantedServer } from '../src/servers.ts';

const BUILD = 'b1';

function found(role: FleetRole, o: { slot?: number; state?: ServerState; ready?: boolean; failed?: boolean } = {}): FoundServer {
  const name = serverName({ role, buildId: BUILD, slot: o.slot });
  const server: Server = {
    id: name,
    name,
    role,
    buildId: BUILD,
    state: o.state ?? 'running',
    publicIp: '198.51.100.2',
    privateIp: '198.18.128.2',
    tags: [],
    createdAt: '2026-12-01T00:00:00.000Z',
  };
  return { server, ready: o.ready ?? false, failed: o.failed ?? false };
}

const dev = { fresh: false, databaseReplaced: false, mode: 'development' } as const;
const prod = { ...dev, mode: 'production' } as const;
const names = (xs: { server: Server }[]) => xs.map((x) => x.server.name);
const reasons = (xs: { server: Server; reason: string }[]) => xs.map((x) => x.reason);

// ---

const wanted = suite('wantedServers');

wanted('development: a database and a webserver, and the authentication server with WEB_FIREWALL=auth', () => {
  const scaling = { webservers: 2, autoscalers: 1 } as never;
  assert.equal(wantedServers({ mode: 'development', scaling, auth: null }), [{ role: 'database' }, { role: 'webserver' }]);
  assert.equal(wantedServers({ mode: 'development', scaling, auth: {} as never }), [
    { role: 'database' },
    { role: 'webserver' },
    { role: 'auth' },
  ]);
});

wanted("production: the database, the initial webservers split between the autoscalers' slots, an autoscaler per slot", () => {
  const w = wantedServers({ mode: 'production', scaling: { webservers: 5, autoscalers: 2 } as never, auth: null });
  assert.equal(w, [
    { role: 'database' },
    { role: 'webserver', slot: 1 },
    { role: 'webserver', slot: 1 },
    { role: 'webserver', slot: 1 },
    { role: 'webserver', slot: 2 },
    { role: 'webserver', slot: 2 },
    { role: 'autoscaler', slot: 1 },
    { role: 'autoscaler', slot: 2 },
  ]);
});

wanted.run();

// ---

const decide = suite('decideServers');
const DEV: WantedServer[] = [{ role: 'database' }, { role: 'webserver' }];

decide('nothing found: every wanted server of the role is created', () => {
  assert.equal(decideServers('database', DEV, [], dev), { keep: [], replace: [], create: [{ role: 'database' }] });
  assert.equal(decideServers('webserver', DEV, [], dev).create, [{ role: 'webserver' }]);
  assert.equal(decideServers('auth', DEV, [], dev).create, [], 'a role not wanted: none');
});

decide('a re-run keeps a ready server and one still booting, and creates none', () => {
  const ready = found('database', { ready: true });
  assert.equal(decideServers('database', DEV, [ready], dev), {
    keep: [{ server: ready.server, reason: 'ready' }],
    replace: [],
    create: [],
  });
  const booting = found('webserver');
  assert.equal(decideServers('webserver', DEV, [booting], dev), {
    keep: [{ server: booting.server, reason: 'still booting' }],
    replace: [],
    create: [],
  });
});

decide('a new build replaces whatever an earlier build of the same id left, ready or not, and creates its own', () => {
  const old = found('database', { ready: true });
  const d = decideServers('database', DEV, [old], { ...dev, fresh: true });
  assert.equal(d.keep, []);
  assert.equal(reasons(d.replace), ['from an earlier build']);
  assert.equal(d.create, [{ role: 'database' }]);
});

decide('a failed bootstrap, a stopped or a broken server is replaced by a new one', () => {
  for (const [f, why] of [
    [found('database', { failed: true }), 'its bootstrap failed'],
    [found('database', { state: 'stopped' }), 'it is stopped'],
    [found('database', { state: 'error' }), 'it is error'],
  ] as const) {
    const d = decideServers('database', DEV, [f], dev);
    assert.equal(d.keep, [], why);
    assert.equal(reasons(d.replace), [why]);
    assert.equal(d.create, [{ role: 'database' }], why);
  }
  // A server that reported ready is not a failed bootstrap, whatever else was recorded.
  assert.equal(reasons(decideServers('database', DEV, [found('database', { ready: true, failed: true })], dev).keep), ['ready']);
  // One still being made by the cloud is kept (it boots).
  assert.equal(reasons(decideServers('database', DEV, [found('database', { state: 'creating' })], dev).keep), ['still booting']);
});

decide('webservers go with a replaced database (they hold its old address)', () => {
  const web = found('webserver', { ready: true });
  const d = decideServers('webserver', DEV, [web], { ...dev, databaseReplaced: true });
  assert.equal(reasons(d.replace), ['the database was replaced']);
  assert.equal(d.create, [{ role: 'webserver' }]);
  assert.equal(reasons(decideServers('database', DEV, [found('database', { ready: true })], { ...dev, databaseReplaced: true }).keep), [
    'ready',
  ]);
});

decide('one server per wanted slot: a second one of the same slot, or one of a slot no longer wanted, is replaced', () => {
  const two = [found('database', { ready: true }), found('database', { ready: true })];
  const d = decideServers('database', DEV, two, dev);
  assert.equal(names(d.keep), [two[0]!.server.name]);
  assert.equal(names(d.replace), [two[1]!.server.name]);
  assert.equal(reasons(d.replace), ['not wanted']);
  assert.equal(d.create, []);
  // Production with one autoscaler now: the one of slot 2 goes; slot 1 is kept.
  const wants = wantedServers({ mode: 'production', scaling: { webservers: 2, autoscalers: 1 } as never, auth: null });
  const [a1, a2] = [found('autoscaler', { slot: 1, ready: true }), found('autoscaler', { slot: 2, ready: true })];
  const p = decideServers('autoscaler', wants, [a1, a2], prod);
  assert.equal(names(p.keep), [a1.server.name]);
  assert.equal(names(p.replace), [a2.server.name]);
  assert.equal(p.create, []);
});

decide('autoscalers: each missing slot is created, the ones there kept', () => {
  const wants = wantedServers({ mode: 'production', scaling: { webservers: 3, autoscalers: 3 } as never, auth: null });
  const a2 = found('autoscaler', { slot: 2, ready: true });
  const d = decideServers('autoscaler', wants, [a2], prod);
  assert.equal(names(d.keep), [a2.server.name]);
  assert.equal(d.create, [
    { role: 'autoscaler', slot: 1 },
    { role: 'autoscaler', slot: 3 },
  ]);
});

decide('production webservers: the first deploy creates the initial ones; once some exist the autoscalers own them', () => {
  const wants = wantedServers({ mode: 'production', scaling: { webservers: 3, autoscalers: 2 } as never, auth: null });
  assert.equal(decideServers('webserver', wants, [], prod).create, [
    { role: 'webserver', slot: 1 },
    { role: 'webserver', slot: 1 },
    { role: 'webserver', slot: 2 },
  ]);
  // More or fewer than the initial count, any slot: kept, none created (the desired count is the autoscalers').
  const there = [1, 1, 2, 2, 2].map((slot) => found('webserver', { slot, ready: true }));
  const d = decideServers('webserver', wants, there, prod);
  assert.is(d.keep.length, 5);
  assert.equal(d.replace, []);
  assert.equal(d.create, []);
  const one = decideServers(
    'webserver',
    wants,
    [found('webserver', { slot: 2, ready: true }), found('webserver', { slot: 1, failed: true })],
    prod,
  );
  assert.is(one.keep.length, 1);
  assert.equal(reasons(one.replace), ['its bootstrap failed']);
  assert.equal(one.create, [], 'the autoscaler makes up the count');
  // A new build, or a replaced database: all go, and the initial ones are made again.
  assert.is(decideServers('webserver', wants, there, { ...prod, databaseReplaced: true }).create.length, 3);
  assert.is(decideServers('webserver', wants, there, { ...prod, fresh: true }).create.length, 3);
});

decide.run();
