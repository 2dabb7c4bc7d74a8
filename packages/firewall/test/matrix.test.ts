/**
 * The host firewall for real: iptables inside the local cloud's servers (cloud `tfw`, 198.19.16.0/24
 * public and 198.19.17.0/24 VPC). The build machine (root namespace), the outsider, two webservers,
 * an autoscaler and a database; for every (source, destination, port) the TCP connection is accepted
 * or refused exactly as the policy says, in each web mode. The native layer is left open here, so
 * what is tested is the host layer alone.
 *
 * The servers boot from a test image with iptables (the stock image has none), made once per machine
 * (see fixtures/cloud.ts). On each server sshd answers on 22 and a Perl listener on 443, 3306 and 8443.
 * The cloud's state is /var/lib/adt-local/test-tfw and its mirror's <tmp>/adt-test-tfw: fixed places,
 * so a run that died is cleaned up by the next one; `after` tears it all down.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { sleep, type Runner } from '@adt/core';
import type { LocalCloud } from '@adt/localcloud';
import { stopMirror } from '@adt/localcloud/services/mirror';
import type { Server } from '@adt/providers';
import { cleanup, killPids, listenerArgv, rejects, setup, startDetached } from '@adt/test-utils';
import { testCloud } from './fixtures/cloud.ts';
import { computePolicies, fingerprint, reconcile, staticFleetSource, type FleetSnapshot, type PolicyOptions } from '../src/index.ts';
import { iptablesBackend, renderRestore } from '../src/backends/iptables.ts';

/**
 * Options of every probe run on this machine or in the outsider: stdin not a socket (execa's default
 * pipe is one), else bash takes itself for a remote shell and reads root's ~/.bashrc, whose start-up
 * (here pyenv's, with a lock) can outlast the probe's timeout and turn an accepted connection into a refusal.
 */
const PROBE = { reject: false, stdin: 'ignore' } as const;

const PORTS = [22, 443, 3306, 8443];
/** The listener's ports: sshd has 22. */
const LISTENED = PORTS.filter((p) => p !== 22);
type Who = 'build' | 'outsider' | 'ws1' | 'ws2' | 'as' | 'db';

const BASE = join(tmpdir(), 'adt-test-tfw');
const MIRROR_DIR = join(BASE, 'mirror');
const tc = await testCloud({
  cloudId: 'tfw',
  stateDir: '/var/lib/adt-local/test-tfw',
  publicCidr: '198.19.16.0/24',
  privateCidr: '198.19.17.0/24',
  mirrorDir: MIRROR_DIR,
});

interface Ctx {
  cloud: LocalCloud;
  image: string;
  s: Record<'ws1' | 'ws2' | 'as' | 'db', Server>;
  runners: Record<string, Runner>;
  pids: number[];
}

const test = suite<Ctx>('host firewall matrix (iptables in the local cloud)');

function fleetOf(ctx: Ctx, ws = [ctx.s.ws1, ctx.s.ws2]): FleetSnapshot {
  return {
    buildMachine: [ctx.cloud.buildMachine.publicIp, ctx.cloud.buildMachine.privateIp],
    webservers: ws.map((s) => s.privateIp!),
    autoscalers: [ctx.s.as.privateIp!],
    databases: [ctx.s.db.privateIp!],
    auth: [],
    authorisedClients: [],
  };
}

async function applyAll(ctx: Ctx, fleet: FleetSnapshot, options: PolicyOptions) {
  const policies = computePolicies(fleet, options);
  const roleOf = { ws1: 'webserver', ws2: 'webserver', as: 'autoscaler', db: 'database' } as const;
  await Promise.all(
    (Object.keys(ctx.s) as (keyof Ctx['s'])[]).map(async (k) => {
      const p = policies[roleOf[k]];
      await iptablesBackend({ runner: ctx.runners[k]! }).apply(p, fingerprint(p));
    }),
  );
}

/**
 * Whether `from` can open a TCP connection to `to`:`port`. The limit covers starting nsenter and
 * bash too, so it is generous: on a loaded 2-core machine process start-up alone can take a second.
 */
async function connects(ctx: Ctx, from: Who, to: keyof Ctx['s'], port: number, limit = '4'): Promise<boolean> {
  const dst = from === 'outsider' ? ctx.s[to].publicIp! : ctx.s[to].privateIp!;
  const probe = ['timeout', limit, 'bash', '-c', `exec 3<>/dev/tcp/${dst}/${port}`];
  const argv =
    from === 'build'
      ? probe
      : from === 'outsider'
        ? [...ctx.cloud.outsiderArgv(probe)]
        : [...(await ctx.cloud.execArgv(ctx.s[from].id, probe))];
  return (await execa(argv[0]!, argv.slice(1), PROBE)).exitCode === 0;
}

/** Every (source, destination, port) in parallel batches; returns the mismatches. */
async function matrix(ctx: Ctx, expected: (from: Who, to: keyof Ctx['s'], port: number) => boolean): Promise<string[]> {
  const jobs: [Who, keyof Ctx['s'], number][] = [];
  for (const from of ['build', 'outsider', 'ws1', 'ws2', 'as', 'db'] as Who[]) {
    for (const to of Object.keys(ctx.s) as (keyof Ctx['s'])[]) if (from !== to) for (const port of PORTS) jobs.push([from, to, port]);
  }
  const wrong: string[] = [];
  for (let i = 0; i < jobs.length; i += 16) {
    await Promise.all(
      jobs.slice(i, i + 16).map(async ([from, to, port]) => {
        const want = expected(from, to, port);
        // A connection that should be accepted gets a second try (a slow start under load is not a
        // refusal); one that should be refused never does (a false accept is always a failure).
        const got = (await connects(ctx, from, to, port)) || (want && (await connects(ctx, from, to, port, '8')));
        if (got !== want) wrong.push(`${from} -> ${to}:${port} ${got ? 'accepted' : 'refused'}, expected ${want ? 'accepted' : 'refused'}`);
      }),
    );
  }
  return wrong;
}

const fleetMember = (w: Who) => w !== 'outsider';
/** The policy, written out by hand: what each web mode must allow. */
function expectedFor(webFrom: (from: Who) => boolean) {
  return (from: Who, to: keyof Ctx['s'], port: number): boolean => {
    if (port === 22) return fleetMember(from);
    if (port === 3306) return to === 'db' && ['ws1', 'ws2', 'as'].includes(from);
    // Autoscalers and the build machine check webservers over HTTPS whatever the web mode.
    if (port === 443) return (to === 'ws1' || to === 'ws2') && (webFrom(from) || from === 'as' || from === 'build');
    if (port === 8443) return to === 'ws1' || to === 'ws2'; // declared: webservers, from anywhere
    return false;
  };
}

const extraPorts = [{ role: 'webserver' as const, port: 8443, protocol: 'tcp' as const, source: '0.0.0.0/0' }];

setup(test, async (ctx) => {
  ctx.cloud = tc.cloud;
  ctx.pids = [];
  // A run that died leaves nothing in the way (this cloud id, state and mirror dir are this file's own).
  await stopMirror(MIRROR_DIR);
  await ctx.cloud.teardown();
  await ctx.cloud.ensureNetwork();
  ctx.image = await tc.image(['iptables']);
  const [ws1, ws2, as, db] = await Promise.all([
    tc.server('webserver', ctx.image),
    tc.server('webserver', ctx.image),
    tc.server('autoscaler', ctx.image),
    tc.server('database', ctx.image),
  ]);
  ctx.s = { ws1, ws2, as, db };
  ctx.runners = {};
  for (const [k, s] of Object.entries(ctx.s)) {
    ctx.runners[k] = tc.runner(s.id);
    ctx.pids.push(startDetached(await ctx.cloud.execArgv(s.id, ['setsid', ...listenerArgv(LISTENED)])));
  }
  // Bounded wait for the listeners (and sshd): every port of every server answers the build machine before any rule.
  for (const s of Object.values(ctx.s)) {
    for (const port of PORTS) {
      let up = false;
      for (let i = 0; i < 100 && !up; i++) {
        up = (await execa('timeout', ['1', 'bash', '-c', `exec 3<>/dev/tcp/${s.privateIp}/${port}`], PROBE)).exitCode === 0;
        if (!up) await sleep(100);
      }
      if (!up) throw new Error(`nothing answers on ${s.name} (${s.privateIp}):${port}`);
    }
  }
});

test.after(async (ctx) => {
  await cleanup('the firewall matrix', [
    () => killPids(ctx.pids ?? []),
    () => tc.cloud.teardown(),
    () => stopMirror(MIRROR_DIR),
    () => rm(BASE, { recursive: true, force: true }),
  ]);
});

test("the servers run the test image, and the iptables the policy goes into is each server's own", async (ctx) => {
  for (const s of Object.values(ctx.s)) assert.is((await ctx.cloud.get(s.id))?.image, ctx.image);
  assert.is((await ctx.cloud.images.get(ctx.image))?.parent, ctx.cloud.images.stockId);
  for (const r of Object.values(ctx.runners)) assert.match((await r.run(['iptables', '-S', 'INPUT'])).stdout, /^-P INPUT ACCEPT/);
  const stockRoot = join(ctx.cloud.images.dir, ctx.cloud.images.stockId, 'rootfs');
  assert.not.ok(existsSync(join(stockRoot, 'usr/sbin/iptables')), 'the stock image has no iptables: it is the test image that brings it');
});

test('web mode open: the matrix is exactly the policy', async (ctx) => {
  await applyAll(ctx, fleetOf(ctx), { webMode: 'open', extraPorts });
  assert.equal(
    await matrix(
      ctx,
      expectedFor(() => true),
    ),
    [],
  );
});

test("web mode Cloudflare: 443 only from Cloudflare's ranges (here: the outsider stands in for them)", async (ctx) => {
  await applyAll(ctx, fleetOf(ctx), { webMode: 'cloudflare', extraPorts, cloudflare: { v4: [`${ctx.cloud.outsiderIp}/32`], v6: [] } });
  assert.equal(
    await matrix(
      ctx,
      expectedFor((from) => from === 'outsider'),
    ),
    [],
  );
});

test('web mode auth: 443 only for an authorised client until its grant expires', async (ctx) => {
  const grant = { ip: ctx.cloud.outsiderIp, expiresAt: new Date(Date.now() + 3600_000).toISOString() };
  await applyAll(ctx, { ...fleetOf(ctx), authorisedClients: [grant] }, { webMode: 'auth', extraPorts });
  assert.equal(
    await matrix(
      ctx,
      expectedFor((from) => from === 'outsider'),
    ),
    [],
  );
  await applyAll(
    ctx,
    { ...fleetOf(ctx), authorisedClients: [grant] },
    { webMode: 'auth', extraPorts, now: new Date(Date.now() + 7200_000) },
  );
  assert.equal(
    await matrix(
      ctx,
      expectedFor(() => false),
    ),
    [],
    'after expiry nobody reaches 443',
  );
});

test('following the fleet: a new webserver is let into the database, a withdrawn one is shut out', async (ctx) => {
  const ws3 = await tc.server('webserver', ctx.image);
  try {
    const options: PolicyOptions = { webMode: 'open', extraPorts };
    const backend = iptablesBackend({ runner: ctx.runners.db! });
    const before = await reconcile({ source: staticFleetSource(fleetOf(ctx)), role: 'database', backend, policy: options });
    const probe = async (s: Server) =>
      (await ctx.cloud.exec(s.id, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.s.db.privateIp}/3306`], { nothrow: true }))
        .exitCode === 0;
    assert.not.ok(await probe(ws3), 'not yet in the fleet: refused');
    assert.ok(await probe(ctx.s.ws2));
    const after = await reconcile({
      source: staticFleetSource(fleetOf(ctx, [ctx.s.ws1, ws3])),
      role: 'database',
      backend,
      policy: options,
    });
    assert.ok(after.changed);
    assert.is.not(after.fingerprint, before.fingerprint);
    assert.ok(await probe(ws3), 'joined: accepted');
    assert.not.ok(await probe(ctx.s.ws2), 'withdrawn: refused');
    const again = await reconcile({
      source: staticFleetSource(fleetOf(ctx, [ctx.s.ws1, ws3])),
      role: 'database',
      backend,
      policy: options,
    });
    assert.not.ok(again.changed, 'nothing changed: nothing applied');
  } finally {
    await ctx.cloud.destroy(ws3.id);
  }
});

test('a rule file that fails to apply leaves the old rules in force', async (ctx) => {
  const backend = iptablesBackend({ runner: ctx.runners.db! });
  const p = computePolicies(fleetOf(ctx), { webMode: 'open', extraPorts }).database;
  await backend.apply(p, fingerprint(p));
  const before = (await ctx.runners.db!.run(['iptables', '-S', 'ADT-INPUT'])).stdout;
  const broken = renderRestore(p, 'ffffffff', 4).replace(
    '-A ADT-INPUT -j DROP',
    '-A ADT-INPUT -p tcp --dport not-a-port -j ACCEPT\n-A ADT-INPUT -j DROP',
  );
  await rejects(backend.applyRendered(broken, null), 'APPLY_FAILED');
  assert.is((await ctx.runners.db!.run(['iptables', '-S', 'ADT-INPUT'])).stdout, before, 'iptables-save of our chain unchanged');
  assert.is(await backend.applied(), fingerprint(p));
  assert.ok(await connects(ctx, 'build', 'db', 22), 'SSH from the build machine still works');
  assert.not.ok(await connects(ctx, 'outsider', 'db', 22), 'and the outsider is still refused');
});

test('bad input changes nothing: a policy that cannot be computed is never applied', async (ctx) => {
  const backend = iptablesBackend({ runner: ctx.runners.db! });
  const fp = await backend.applied();
  const reconciled = reconcile({
    source: staticFleetSource(fleetOf(ctx)),
    role: 'database',
    backend,
    policy: { webMode: 'open', extraPorts: [{ role: 'database', port: 3306, protocol: 'tcp', source: '0.0.0.0/0' }] },
  });
  await rejects(reconciled, { exitCode: 2 });
  assert.is(await backend.applied(), fp);
});

test('SSH from the build machine is never dropped while policies are swapped', async (ctx) => {
  const backend = iptablesBackend({ runner: ctx.runners.ws1! });
  // The build machine is this process's own namespace: probe with sockets (no process start-up).
  const probeOnce = () =>
    new Promise<boolean>((resolve) => {
      const sock = connect({ host: ctx.s.ws1.privateIp!, port: 22 });
      sock.setTimeout(2000, () => (sock.destroy(), resolve(false)));
      sock.once('connect', () => (sock.destroy(), resolve(true)));
      sock.once('error', () => resolve(false));
    });
  let failures = 0;
  let probes = 0;
  let stop = false;
  const prober = (async () => {
    for (let i = 0; i < 100_000 && !stop; i++) {
      probes++;
      if (!(await probeOnce())) failures++;
    }
  })();
  // At least 25 swaps and 200 probes; bounded at 200 swaps.
  let swaps = 0;
  for (; swaps < 200 && (swaps < 25 || probes < 200); swaps++) {
    const clients = Array.from({ length: swaps % 7 }, (_, k) => ({
      ip: `198.19.16.${100 + k}`,
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    }));
    await reconcile({
      source: staticFleetSource({ ...fleetOf(ctx), authorisedClients: clients }),
      role: 'webserver',
      backend,
      policy: { webMode: 'auth', extraPorts },
    });
  }
  stop = true;
  await prober;
  assert.ok(probes >= 200, `only ${probes} probes ran`);
  assert.is(failures, 0, `${failures} of ${probes} SSH probes failed during ${swaps} swaps`);
});

test.run();
