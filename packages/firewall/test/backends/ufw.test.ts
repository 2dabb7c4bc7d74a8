/**
 * The ufw backend for real, inside a local-cloud server (cloud `tuf`, 198.19.18.0/24 + 198.19.19.0/24):
 * the server's /etc and network namespace are its own, so ufw's state never touches this machine's
 * firewall. The server boots from a test image with ufw and iptables (the stock image has neither),
 * made once per machine (see ../fixtures/cloud.ts); sshd answers on 22 and a Perl listener on 443.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { sleep, type Runner } from '@adt/core';
import type { LocalCloud } from '@adt/localcloud';
import { stopMirror } from '@adt/localcloud/services/mirror';
import type { Server } from '@adt/providers';
import { cleanup, killPids, listenerArgv, setup, startDetached } from '@adt/test-utils';
import { computePolicies, fingerprint, reconcile, staticFleetSource, type FleetSnapshot } from '../../src/index.ts';
import { ufwBackend } from '../../src/backends/ufw.ts';
import { testCloud } from '../fixtures/cloud.ts';

/**
 * Options of every probe run on this machine or in the outsider: stdin not a socket (execa's default
 * pipe is one), else bash takes itself for a remote shell and reads root's ~/.bashrc, whose start-up
 * (here pyenv's, with a lock) can outlast the probe's timeout and turn an accepted connection into a refusal.
 */
const PROBE = { reject: false, stdin: 'ignore' } as const;

const BASE = join(tmpdir(), 'adt-test-tuf');
const MIRROR_DIR = join(BASE, 'mirror');
const tc = await testCloud({
  cloudId: 'tuf',
  stateDir: '/var/lib/adt-local/test-tuf',
  publicCidr: '198.19.18.0/24',
  privateCidr: '198.19.19.0/24',
  mirrorDir: MIRROR_DIR,
});

interface Ctx {
  cloud: LocalCloud;
  s: Server;
  runner: Runner;
  pids: number[];
}
const test = suite<Ctx>('ufw backend (in a local-cloud server)');

setup(test, async (ctx) => {
  ctx.cloud = tc.cloud;
  ctx.pids = [];
  // A run that died leaves nothing in the way (this cloud id, state and mirror dir are this file's own).
  await stopMirror(MIRROR_DIR);
  await ctx.cloud.teardown();
  await ctx.cloud.ensureNetwork();
  const image = await tc.image(['iptables', 'ufw']);
  ctx.s = await tc.server('webserver', image);
  ctx.runner = tc.runner(ctx.s.id, 60_000);
  ctx.pids.push(startDetached(await ctx.cloud.execArgv(ctx.s.id, ['setsid', ...listenerArgv([443])])));
  // Bounded wait for the listener and sshd.
  for (const port of [22, 443]) {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = (await ctx.cloud.exec(ctx.s.id, ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { nothrow: true })).exitCode === 0;
      if (!up) await sleep(100);
    }
    if (!up) throw new Error(`nothing answers on ${ctx.s.name}:${port}`);
  }
  assert.match((await ctx.runner.run(['ufw', 'status'])).stdout, /inactive/, "the server's ufw starts inactive");
});

test.after(async (ctx) => {
  await cleanup('the ufw backend test', [
    () => killPids(ctx.pids ?? []),
    () => tc.cloud.teardown(),
    () => stopMirror(MIRROR_DIR),
    () => rm(BASE, { recursive: true, force: true }),
  ]);
});

const fleet = (ctx: { cloud: LocalCloud; s: Server }): FleetSnapshot => ({
  buildMachine: [ctx.cloud.buildMachine.publicIp],
  webservers: [ctx.s.privateIp!],
  autoscalers: [],
  databases: [],
  auth: [],
  authorisedClients: [],
});

async function outsiderConnects(ctx: { cloud: LocalCloud; s: Server }, port: number) {
  const argv = ctx.cloud.outsiderArgv(['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.s.publicIp}/${port}`]);
  return (await execa(argv[0], argv.slice(1), PROBE)).exitCode === 0;
}
async function buildConnects(ctx: { s: Server }, port: number) {
  return (await execa('timeout', ['1.5', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.s.publicIp}/${port}`], PROBE)).exitCode === 0;
}

test('a policy applied with ufw shows in `ufw status` and is what the connections see', async (ctx) => {
  const backend = ufwBackend({ runner: ctx.runner });
  assert.is(await backend.applied(), null);
  const r = await reconcile({ source: staticFleetSource(fleet(ctx)), role: 'webserver', backend, policy: { webMode: 'open' } });
  assert.ok(r.changed);
  const status = (await ctx.runner.run(['ufw', 'status'])).stdout;
  assert.match(status, /Status: active/);
  assert.match(status, /22\/tcp\s+ALLOW\s+198\.19\.18\.1\b/);
  assert.match(status, /443\/tcp\s+ALLOW\s+Anywhere/);
  assert.ok(await buildConnects(ctx, 22));
  assert.not.ok(await outsiderConnects(ctx, 22), 'SSH is not for the outsider');
  assert.ok(await outsiderConnects(ctx, 443));
  assert.is(await backend.applied(), r.fingerprint);
});

test('re-applying the same policy changes nothing, and a new policy removes what went away', async (ctx) => {
  const backend = ufwBackend({ runner: ctx.runner });
  const same = await reconcile({ source: staticFleetSource(fleet(ctx)), role: 'webserver', backend, policy: { webMode: 'open' } });
  assert.not.ok(same.changed);
  // Force a re-apply of the same rules through apply(): no rule may be deleted or duplicated.
  const p = computePolicies(fleet(ctx), { webMode: 'open' }).webserver;
  await backend.apply(p, fingerprint(p));
  const added = (await ctx.runner.run(['ufw', 'show', 'added'])).stdout.split('\n').filter((l) => l.startsWith('ufw allow'));
  assert.is(added.length, 2 + 1, `ssh from two sources and 443 from anywhere: ${added.join(' | ')}`);
  assert.ok(await outsiderConnects(ctx, 443), '443 still open after the re-apply');
  const auth = await reconcile({ source: staticFleetSource(fleet(ctx)), role: 'webserver', backend, policy: { webMode: 'auth' } });
  assert.ok(auth.changed);
  const status = (await ctx.runner.run(['ufw', 'status'])).stdout;
  assert.not.match(status, /443\/tcp\s+ALLOW\s+Anywhere/, 'no longer open to anywhere');
  assert.not.ok(await outsiderConnects(ctx, 443), 'no authorised client: 443 closed to the outsider');
  assert.ok(await buildConnects(ctx, 443), "but open to the build machine's health checks");
  assert.ok(await buildConnects(ctx, 22), 'SSH from the build machine kept');
});

test("this machine's own ufw was never touched", async () => {
  const r = await execa('ufw', ['status'], { reject: false });
  assert.match(r.stdout, /inactive/);
});

test.run();
