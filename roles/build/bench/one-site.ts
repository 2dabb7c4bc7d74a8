/**
 * One site on several webservers, on the local provider (its own cloud `tos` on 198.19.56.0/24 +
 * 198.19.57.0/24, a production fleet of 4 webservers, destroyed at the end), each measure beside the
 * original's way of doing the same work, timed in the same run:
 *
 * 1. **Upload -> served everywhere**: a file written through one webserver's mount of the shared
 *    files (s3fs returns from close() once the object is in the bucket: what WordPress acknowledges)
 *    until the 3 other webservers serve it over HTTPS; 100 uploads, median and worst. The original
 *    syncs the webroot through the datastore 4 times a minute on each machine: an upload waits for
 *    its machine's next run to go up and for the other machine's next run to come down. That is
 *    modelled here with the times of this run's own `s3cmd put` and `s3cmd get` of the same file
 *    (the original's tool) and the two waits drawn uniformly from 0-15 s (seeded, 100 draws).
 * 2. **Create -> in DNS of a new webserver with 1 GiB of uploads in the store**: from the
 *    autoscaler's create to its DNS record (its event log). The original unpacks the webroot's
 *    tarball on each new webserver: here `s3cmd get` of a 1 GiB webroot tarball from the same S3
 *    and `tar -xzf`, timed, on top of the same boot.
 * 3. **A release rolled out across 4 webservers** (`Release publish --from DIR`: pack, upload,
 *    one webserver after another), 3 rounds; the original has no releases: changed code reaches
 *    the other webservers by the same sync (15-30 s).
 *
 * Run: npx tsx roles/build/bench/one-site.ts [--json]
 */
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { keys } from '@adt/configstore';
import { freePort, sleep } from '@adt/core';
import { writeS3cmdConfig } from '@adt/test-utils';
import { stockCode } from '@adt/webserver';
import { aRecords, helper, localCloudOf, openTestFleet, removeFleet, until, zx, type Fleet } from '../test/_fleet.ts';
import { outsiderStatus } from '../test/_site.ts';

const dir = await mkdtemp(join(tmpdir(), 'adt-bench-one-site-'));
const f: Fleet = {
  dir,
  file: join(dir, 'bench.env'),
  cloudId: 'tos',
  host: 'www.tos.test',
  dnsIp: '198.19.56.1',
  caFile: join(dir, 'state/builds/bench/ca/ca.crt'),
};
const s3Port = await freePort();
await writeFile(
  f.file,
  [
    'MODE=production',
    'SITE_URL=www.tos.test',
    'BUILD_ID=bench',
    `STATE_DIR=${join(dir, 'state')}`,
    `S3_PORT=${s3Port}`,
    'LOCAL_CLOUD_ID=tos',
    'LOCAL_PUBLIC_CIDR=198.19.56.0/24',
    'LOCAL_PRIVATE_CIDR=198.19.57.0/24',
    'WEBSERVERS=4',
    'MAX_WEBSERVERS=6',
    'SCALING_INTERVAL=1',
    'READY_TIMEOUT=600',
    '',
  ].join('\n'),
);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const worst = (xs: number[]) => sorted(xs).at(-1)!;
const seconds = async (fn: () => Promise<unknown>) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};
/** A deterministic PRNG (mulberry32), so the model's draws are the same on every run. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const status = async (ip: string, path: string) => (await outsiderStatus(f.cloudId, f.host, ip, f.caFile, 3, path)).stdout;

const result: Record<string, unknown> = { machine: `${cpus().length} x ${cpus()[0]?.model.trim()}` };
try {
  const d = await zx('deploy.mjs', ['--config', f.file]);
  if (d.exitCode !== 0) throw new Error(`deploy failed: ${d.stderr}${d.stdout.split('\n').slice(-30).join('\n')}`);
  const cloud = localCloudOf(f.file);
  const servers = (await cloud.list({ buildId: 'bench', role: 'webserver' })).filter((s) => s.state === 'running');
  const [a, ...others] = servers;
  if (!a || others.length !== 3) throw new Error(`4 webservers expected, found ${servers.length}`);

  // --- 1. Upload -> served by every other webserver ---
  await cloud.exec(a.id, ['mkdir', '-p', '/var/lib/adt/site/uploads/bench']);
  const latencies: number[] = [];
  for (let i = 0; i < 100; i++) {
    const name = `u${i}-${randomBytes(3).toString('hex')}.bin`;
    // close() returns once s3fs has put the object: the moment WordPress would acknowledge it.
    await cloud.exec(a.id, ['sh', '-c', `head -c 20000 /dev/urandom > /var/lib/adt/site/uploads/bench/${name}`]);
    const t0 = Date.now();
    const pending = new Set(others.map((s) => s.publicIp!));
    for (let poll = 0; poll < 400 && pending.size; poll++) {
      for (const ip of [...pending]) if ((await status(ip, `/wp-content/uploads/bench/${name}`)) === '200') pending.delete(ip);
    }
    if (pending.size) throw new Error(`upload ${name} not served by ${[...pending].join(', ')}`);
    latencies.push((Date.now() - t0) / 1000);
  }
  // The original's way: its sync runs every 15 s on each machine; this run's own s3cmd transfers.
  const fleet = await openTestFleet(f.file);
  const files = (await fleet.store.require(keys.sharedFiles)).bucket;
  const s3cfg = join(dir, 's3cfg');
  await writeS3cmdConfig(s3cfg, { endpoint: `http://198.19.57.1:${s3Port}` });
  const sample = join(dir, 'sample.bin');
  await writeFile(sample, randomBytes(20_000));
  const puts: number[] = [];
  const gets: number[] = [];
  for (let i = 0; i < 5; i++) {
    puts.push(await seconds(() => execa('s3cmd', ['-c', s3cfg, '-q', 'put', sample, `s3://${files}/bench-sync/s${i}.bin`])));
    gets.push(
      await seconds(() =>
        execa('s3cmd', ['-c', s3cfg, '-q', '--force', 'get', `s3://${files}/bench-sync/s${i}.bin`, join(dir, 'got.bin')]),
      ),
    );
  }
  const rand = prng(20261202);
  const original = Array.from({ length: 100 }, () => rand() * 15 + median(puts) + rand() * 15 + median(gets));
  result.upload = {
    uploads: latencies.length,
    medianSeconds: median(latencies),
    worstSeconds: worst(latencies),
    original: { medianSeconds: median(original), worstSeconds: worst(original), s3cmdPut: median(puts), s3cmdGet: median(gets) },
  };

  // --- 3. Release rollout across the 4 webservers ---
  const code = join(dir, 'code');
  await stockCode('/usr/share/wordpress', '/var/lib/wordpress/wp-content', code);
  const rollouts: number[] = [];
  for (let round = 0; round < 3; round++) {
    await mkdir(join(code, 'wp-content/mu-plugins'), { recursive: true });
    await writeFile(join(code, 'wp-content/mu-plugins/bench.php'), `<?php // round ${round}\n`);
    const r = await helper('Release', ['--config', f.file, '--json', 'publish', '--from', code], 600_000);
    if (r.exitCode !== 0) throw new Error(`Release publish failed: ${r.stderr}`);
    rollouts.push((JSON.parse(r.stdout) as { seconds: number }).seconds);
  }
  result.rollout = { webservers: 4, medianSeconds: median(rollouts), rounds: rollouts, original: { seconds: '15-30 (its sync cadence)' } };

  // --- 2. A new webserver with 1 GiB of uploads in the store ---
  const chunk = randomBytes(16 * 1024 * 1024);
  for (let i = 0; i < 64; i++) {
    chunk.writeUInt32BE(i, 0);
    await fleet.s3.send(new PutObjectCommand({ Bucket: files, Key: `bulk/${String(i).padStart(2, '0')}.bin`, Body: chunk }));
  }
  const before = new Set((await cloud.list({ buildId: 'bench', role: 'webserver' })).map((s) => s.name));
  const up = await helper('AdjustScaling', ['--config', f.file, '5']);
  if (up.exitCode !== 0) throw new Error(`AdjustScaling failed: ${up.stderr}`);
  if (!(await until(async () => (await aRecords(f)).length === 5, 600_000)))
    throw new Error('the 5th webserver did not enter DNS in 600 s');
  const st = JSON.parse((await helper('status', ['--config', f.file, '--json'])).stdout) as {
    events: { at: string; action: string; server?: string }[];
  };
  const added = (await cloud.list({ buildId: 'bench', role: 'webserver' })).find((s) => !before.has(s.name))!;
  const at = (action: string) => Date.parse(st.events.find((e) => e.action === action && e.server === added.name)?.at ?? '');
  const createToDns = (at('add-dns') - at('create')) / 1000;
  if (!(createToDns > 0)) throw new Error(`no create/add-dns events for ${added.name}`);
  const served = await status(added.publicIp!, '/wp-content/uploads/bulk/63.bin');
  // The original's way: the new webserver fetches the webroot's tarball and unpacks it.
  const tree = join(dir, 'webroot');
  await mkdir(join(tree, 'uploads'), { recursive: true });
  for (let i = 0; i < 64; i++) {
    chunk.writeUInt32BE(i, 0);
    await writeFile(join(tree, 'uploads', `${i}.bin`), chunk);
  }
  const tarball = join(dir, 'webroot.tar.gz');
  await execa('tar', ['-czf', tarball, '-C', tree, '.']);
  await rm(tree, { recursive: true, force: true });
  await execa('s3cmd', ['-c', s3cfg, '-q', 'put', tarball, `s3://${files}/bench-sync/webroot.tar.gz`]);
  await rm(tarball, { force: true });
  const unpack = join(dir, 'unpacked');
  await mkdir(unpack);
  const fetchSeconds = await seconds(() =>
    execa('s3cmd', ['-c', s3cfg, '-q', '--force', 'get', `s3://${files}/bench-sync/webroot.tar.gz`, tarball]),
  );
  const untarSeconds = await seconds(() => execa('tar', ['-xzf', tarball, '-C', unpack]));
  await rm(unpack, { recursive: true, force: true });
  await rm(tarball, { force: true });
  await fleet.close();
  result.newWebserver = {
    uploadsInStore: '1 GiB (64 x 16 MiB)',
    createToDnsSeconds: createToDns,
    servesAnUploadAtOnce: served === '200',
    original: { tarballFetchSeconds: fetchSeconds, untarSeconds, createToDnsSeconds: createToDns + fetchSeconds + untarSeconds },
  };
  await sleep(1000);
} finally {
  await removeFleet(f);
}

if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
else {
  const u = result.upload as { medianSeconds: number; worstSeconds: number; original: { medianSeconds: number; worstSeconds: number } };
  const r = result.rollout as { medianSeconds: number; rounds: number[] };
  const n = result.newWebserver as {
    createToDnsSeconds: number;
    servesAnUploadAtOnce: boolean;
    original: { createToDnsSeconds: number; tarballFetchSeconds: number; untarSeconds: number };
  };
  console.log(`One site on 4 webservers, local provider; ${String(result.machine)}\n`);
  console.log('| measure | ours (s) | original (s) | ratio |\n|---|---:|---:|---:|');
  console.log(
    `| upload -> served by the 3 others, median of 100 | ${u.medianSeconds.toFixed(2)} | ${u.original.medianSeconds.toFixed(1)} | ` +
      `${(u.original.medianSeconds / u.medianSeconds).toFixed(0)}x |`,
  );
  console.log(
    `| upload -> served by the 3 others, worst of 100 | ${u.worstSeconds.toFixed(2)} | ${u.original.worstSeconds.toFixed(1)} | ` +
      `${(u.original.worstSeconds / u.worstSeconds).toFixed(0)}x |`,
  );
  console.log(
    `| new webserver, 1 GiB of uploads in the store: create -> in DNS | ${n.createToDnsSeconds.toFixed(1)} | ` +
      `${n.original.createToDnsSeconds.toFixed(1)} | ${(n.original.createToDnsSeconds / n.createToDnsSeconds).toFixed(1)}x |`,
  );
  console.log(`| release rolled out across 4 webservers, median of 3 | ${r.medianSeconds.toFixed(1)} | 15-30 (sync) | - |`);
  console.log(
    `\nnew webserver: serves an upload at once: ${n.servesAnUploadAtOnce}; the original's tarball: fetch ` +
      `${n.original.tarballFetchSeconds.toFixed(1)} s + untar ${n.original.untarSeconds.toFixed(1)} s on top of the same boot; ` +
      `rollouts ${r.rounds.join(', ')} s`,
  );
}
