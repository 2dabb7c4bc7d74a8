/**
 * The local cloud's speed: time from `create` to the server `running` (its init started sshd and
 * cron) and to its user-data's end (the console has its exit code), and `destroy`, for 1 server and
 * for 10 in parallel (median of 3 rounds), from the stock image (built first if this machine has
 * none: not timed). Its own cloud `tbn` on 198.19.20.0/24 + 198.19.21.0/24, state under
 * <tmp>/adt-bench-tbn, torn down at the end. Needs root.
 *
 * Run: npm run bench -w @adt/localcloud   (or: npx tsx packages/localcloud/bench/cloud.ts [--json])
 */
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil } from '@adt/core';
import { serverName } from '@adt/providers';
import { LocalCloud } from '../src/cloud.ts';

const cloud = new LocalCloud({
  cloudId: 'tbn',
  stateDir: join(tmpdir(), 'adt-bench-tbn'),
  publicCidr: '198.19.20.0/24',
  privateCidr: '198.19.21.0/24',
});
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Round {
  running: number;
  userData: number;
  destroyed: number;
}

async function round(n: number): Promise<Round> {
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
  try {
    await Promise.all(servers.map((s) => cloud.waitUntilRunning(s.id, { timeoutMs: 120_000, intervalMs: 10 })));
    const running = ms(t0);
    await Promise.all(
      servers.map((s) =>
        pollUntil(async () => (await cloud.console(s.id)).exitCode !== null, {
          timeoutMs: 60_000,
          intervalMs: 10,
          what: `${s.id}'s user-data`,
        }),
      ),
    );
    const userData = ms(t0);
    const t1 = process.hrtime.bigint();
    await Promise.all(servers.map((s) => cloud.destroy(s.id)));
    return { running, userData, destroyed: ms(t1) };
  } catch (e) {
    await Promise.all(servers.map((s) => cloud.destroy(s.id)));
    throw e;
  }
}

try {
  await cloud.teardown();
  await cloud.ensureNetwork();
  await cloud.images.ensureStock(null, (line) => console.error(line));
  await round(1); // warm-up
  const results: Record<string, Round> = {};
  for (const n of [1, 10]) {
    const rounds: Round[] = [];
    for (let i = 0; i < 3; i++) rounds.push(await round(n));
    results[n] = {
      running: median(rounds.map((r) => r.running)),
      userData: median(rounds.map((r) => r.userData)),
      destroyed: median(rounds.map((r) => r.destroyed)),
    };
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 2));
  else {
    console.log(`Local cloud, median of 3 rounds; ${cpus().length} x ${cpus()[0]?.model.trim()}\n`);
    console.log('| servers in parallel | create -> running | create -> user-data done | destroy (all) |');
    console.log('|---:|---:|---:|---:|');
    const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
    for (const [n, r] of Object.entries(results)) console.log(`| ${n} | ${s(r.running)} | ${s(r.userData)} | ${s(r.destroyed)} |`);
  }
} finally {
  await cloud.teardown();
}
