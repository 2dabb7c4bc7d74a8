/**
 * Cold development-mode deploy on the local provider: wall time from nothing of the cloud (no
 * cloud network, no daemon, no S3 server, no DNS server, empty state) to the site answering, split
 * by step; 3 rounds, each followed by destroy (also timed). What the machine keeps between builds
 * is said with the result: the role bundle (ADT_CACHE_DIR) and the prepared images (the first deploy
 * that needs one makes it; later ones reuse it, as on a cloud). Its own cloud `tbd` on
 * 198.19.34.0/24 + 198.19.35.0/24 and its own state directory, removed at the end.
 *
 * With --first: one round as on a fresh machine, with an empty image directory and bundle cache of
 * its own (the stock image built by mmdebstrap through the cloud's package mirror, whose cache starts
 * empty too, the bundle and Node runtime made, each role's image prepared from its first server).
 *
 * Run: npm run bench -w @adt/role-build   (or: npx tsx roles/build/bench/deploy.ts [--first] [--json])
 */
import { cpus } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort } from '@adt/core';
import type { DeploySummary } from '@adt/fleet';
import { root } from '../test/_fleet.ts';

const zx = join(root, 'node_modules/.bin/zx');
const first = process.argv.includes('--first');
const dir = await mkdtemp(join(tmpdir(), 'adt-bench-deploy-'));
const file = join(dir, 'bench.env');
// A fresh machine's: nothing built yet (images, bundle, Node runtime) and an empty package mirror.
const fresh = first ? { images: join(dir, 'images'), cache: join(dir, 'cache') } : null;
await writeFile(
  file,
  [
    'SITE_URL=www.tbd.test',
    'BUILD_ID=bench',
    `STATE_DIR=${join(dir, 'state')}`,
    `S3_PORT=${await freePort()}`,
    'LOCAL_CLOUD_ID=tbd',
    'LOCAL_PUBLIC_CIDR=198.19.34.0/24',
    'LOCAL_PRIVATE_CIDR=198.19.35.0/24',
    'READY_TIMEOUT=600',
    ...(fresh ? [`LOCAL_IMAGE_DIR=${fresh.images}`] : []),
    '',
  ].join('\n'),
);
// Bounded, generously: a first deploy may prepare the roles' images.
const run = (script: string) =>
  execa(zx, [join(root, 'roles/build', script), '--config', file, '--json'], {
    cwd: root,
    timeout: 1_500_000,
    env: fresh ? { ADT_CACHE_DIR: fresh.cache } : {},
  });
const roundCount = first ? 1 : 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Round {
  total: number;
  steps: Record<string, number>;
  destroy: number;
  /** Whether this round made the role bundle and images (false: found on the machine). */
  bundleBuilt: boolean;
  imagesPrepared: string[];
  /** Seconds each prepared image took (its builder booted from the stock image, which a fresh machine builds first). */
  imageSeconds: Record<string, number>;
  bundle: { bytes: number; seconds: number; runtimeBytes: number };
}
const rounds: Round[] = [];
try {
  await run('destroy.mjs');
  for (let i = 0; i < roundCount; i++) {
    const t0 = Date.now();
    const out = JSON.parse((await run('deploy.mjs')).stdout) as DeploySummary;
    const total = (Date.now() - t0) / 1000;
    const t1 = Date.now();
    await run('destroy.mjs');
    rounds.push({
      total,
      steps: out.steps,
      destroy: (Date.now() - t1) / 1000,
      bundleBuilt: !out.bundle.cached,
      imagesPrepared: out.images.filter((x) => x.prepared).map((x) => x.role),
      imageSeconds: Object.fromEntries(out.images.filter((x) => x.seconds !== null).map((x) => [x.role, x.seconds!])),
      bundle: { bytes: out.bundle.bytes, seconds: out.bundle.seconds, runtimeBytes: out.bundle.runtimeBytes },
    });
  }
} finally {
  await execa(zx, [join(root, 'roles/build/destroy.mjs'), '--config', file], {
    cwd: root,
    reject: false,
    timeout: 600_000,
    env: fresh ? { ADT_CACHE_DIR: fresh.cache } : {},
  });
  await rm(dir, { recursive: true, force: true });
}

const steps = Object.keys(rounds[0]!.steps);
const result = {
  machine: `${cpus().length} x ${cpus()[0]?.model.trim()}`,
  coldDeploySeconds: median(rounds.map((r) => r.total)),
  steps: Object.fromEntries(steps.map((s) => [s, median(rounds.map((r) => r.steps[s] ?? 0))])),
  destroySeconds: median(rounds.map((r) => r.destroy)),
  rounds,
};
if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
else {
  const what = first ? 'first deploy on a fresh machine (images, bundle and runtime made), 1 round' : 'median of 3 rounds';
  console.log(`Cold development-mode deploy, local provider, ${what}; ${result.machine}\n`);
  console.log('| step | seconds |\n|---|---:|');
  for (const [s, v] of Object.entries(result.steps)) console.log(`| ${s} | ${v.toFixed(1)} |`);
  // Outside the pipeline's steps: zx and tsx starting, opening the fleet (the cloud's daemon started), the summary.
  const outside = result.coldDeploySeconds - Object.values(result.steps).reduce((a, b) => a + b, 0);
  console.log(`| outside the steps (process start, the cloud's daemon started, summary) | ${outside.toFixed(1)} |`);
  console.log(`| **whole deploy, as the user waits (process start to summary)** | **${result.coldDeploySeconds.toFixed(1)}** |`);
  console.log(`| destroy (everything, cloud torn down) | ${result.destroySeconds.toFixed(1)} |`);
  const made = rounds.map(
    (r, i) =>
      `round ${i + 1}: ${r.total.toFixed(1)} s, destroy ${r.destroy.toFixed(1)} s, bundle ${r.bundleBuilt ? 'built' : 'found'}, ` +
      `images ${
        Object.entries(r.imageSeconds)
          .map(([role, t]) => `${role} ${t} s`)
          .join(', ') || 'found'
      }` +
      (r.bundleBuilt ? `, bundle ${(r.bundle.bytes / 1e6).toFixed(2)} MB in ${r.bundle.seconds} s` : '') +
      `, Node runtime ${(r.bundle.runtimeBytes / 1e6).toFixed(0)} MB`,
  );
  console.log(`\nRounds (${first ? 'from nothing' : 'the bundle and images are kept by the machine'}): ${made.join('; ')}`);
}
