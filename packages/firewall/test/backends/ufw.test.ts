/**
 * The ufw backend for real, inside a local-cloud server (cloud `tuf`, 198.19.18.0/24 + 198.19.19.0/24):
 * the server's /etc is its own, so ufw's state never touches this machine's firewall.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { execaRunner, sleep, type Runner } from '@adt/core';
import { listenerArgv } from '@adt/test-utils';
import localDriver, { type LocalCloud } from '@adt/providers/drivers/local';
import { serverName, type Server } from '@adt/providers';
import { computePolicies, fingerprint, reconcile, staticFleetSource, type FleetSnapshot } from '../../src/index.ts';
import { ufwBackend } from '../../src/backends/ufw.ts';

const test = suite<{ cloud: LocalCloud; s: Server; runner: Runner }>('ufw backend (in a local-cloud server)');

test.before(async (ctx) => {
  ctx.cloud = localDriver({
    cloudId: 'tuf',
    stateDir: '/var/lib/adt-local/test-tuf',
    publicCidr: '198.19.18.0/24',
    privateCidr: '198.19.19.0/24',
  });
  await ctx.cloud.teardown();
  await ctx.cloud.ensureNetwork();
  ctx.s = await ctx.cloud.create({
    name: serverName({ role: 'webserver', buildId: 'tuf' }),
    role: 'webserver',
    buildId: 'tuf',
    userData: '#!/bin/sh\n',
  });
  await ctx.cloud.waitUntilRunning(ctx.s.id);
  const real = execaRunner({ timeoutMs: 60_000 });
  ctx.runner = { run: async (argv, o) => real.run(await ctx.cloud.execArgv(ctx.s.id, [...argv]), o) };
  const argv = await ctx.cloud.execArgv(ctx.s.id, ['setsid', ...listenerArgv([22, 443])]);
  spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore' }).unref();
  for (
    let i = 0;
    i < 100 && (await ctx.cloud.exec(ctx.s.id, ['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/443'], { nothrow: true })).exitCode !== 0;
    i++
  )
    await sleep(50);
});

test.after(async (ctx) => {
  await ctx.cloud?.teardown();
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
  return (await execa(argv[0], argv.slice(1), { reject: false })).exitCode === 0;
}
async function buildConnects(ctx: { s: Server }, port: number) {
  return (await execa('timeout', ['1.5', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.s.publicIp}/${port}`], { reject: false })).exitCode === 0;
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
