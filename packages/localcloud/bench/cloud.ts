/**
 * The local cloud's speed: time from `create` to the server running its user-data, and `destroy`,
 * for 1 server and for 10 in parallel (median of 3 rounds). Its own cloud `tbn` on
 * 198.19.20.0/24 + 198.19.21.0/24, torn down at the end.
 *
 * Run: npm run bench -w @adt/providers   (or: npx tsx packages/providers/bench/local.ts [--json])
 */
import { cpus } from 'node:os';
import { sleep } from '@adt/core';
import localDriver from '../src/drivers/local.ts';
import { serverName } from '../src/naming.ts';

const cloud = localDriver({
  cloudId: 'tbn',
  stateDir: '/var/lib/adt-local/bench-tbn',
  publicCidr: '198.19.20.0/24',
  privateCidr: '198.19.21.0/24',
});
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function round(n: number) {
  const t0 = process.hrtime.bigint();
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      cloud.create({
        name: serverName({ role: 'webserver', buildId: 'bench' }),
        role: 'webserver',
        buildId: 'bench',
        userData: '#!/bin/sh\necho up\n',
      }),
    ),
  );
  // Bounded: 60 s for the user-data of every server to start.
  for (let i = 0; i < 1200 && !(await Promise.all(servers.map((s) => cloud.bootStatus(s.id)))).every((b) => b.started); i++) await sleep(5);
  const started = ms(t0);
  const t1 = process.hrtime.bigint();
  await Promise.all(servers.map((s) => cloud.destroy(s.id)));
  return { started, destroyed: ms(t1) };
}

try {
  await cloud.teardown();
  await cloud.ensureNetwork();
  await round(1); // warm-up
  const results: Record<string, { started: number; destroyed: number }> = {};
  for (const n of [1, 10]) {
    const rounds = [];
    for (let i = 0; i < 3; i++) rounds.push(await round(n));
    results[n] = { started: median(rounds.map((r) => r.started)), destroyed: median(rounds.map((r) => r.destroyed)) };
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 2));
  else {
    console.log(`Local cloud, median of 3 rounds; ${cpus().length} x ${cpus()[0]?.model.trim()}\n`);
    console.log('| servers in parallel | create -> user-data started | destroy (all) |');
    console.log('|---:|---:|---:|');
    for (const [n, r] of Object.entries(results))
      console.log(`| ${n} | ${(r.started / 1000).toFixed(2)} s | ${(r.destroyed / 1000).toFixed(2)} s |`);
  }
} finally {
  await cloud.teardown();
}
