/**
 * Production mode's reactions on the local provider, with the default scaling settings (probes
 * every 2 s, 2 failures, 2 s probe timeout): time from a webserver dying (nginx and php-fpm killed)
 * to its A record gone, and from `ManuallyScale.ts` +2 to both new webservers in DNS. 3 rounds each.
 * Its own cloud `tbs` on 198.19.46.0/24 + 198.19.47.0/24, destroyed at the end.
 *
 * Run: npx tsx roles/build/bench/scaling.ts [--json]
 */
import { cpus } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from '@adt/core';
import { aRecords, helper, until, zx, type Fleet } from '../test/_fleet.ts';

const dir = await mkdtemp(join(tmpdir(), 'adt-bench-scaling-'));
const f: Fleet = {
  dir,
  file: join(dir, 'bench.env'),
  cloudId: 'tbs',
  host: 'www.tbs.test',
  dnsIp: '198.19.46.1',
  caFile: join(dir, 'state/builds/bench/ca/ca.crt'),
};
await writeFile(
  f.file,
  [
    'MODE=production',
    'SITE_URL=www.tbs.test',
    'BUILD_ID=bench',
    `STATE_DIR=${join(dir, 'state')}`,
    `S3_PORT=${await freePort()}`,
    'LOCAL_CLOUD_ID=tbs',
    'LOCAL_PUBLIC_CIDR=198.19.46.0/24',
    'LOCAL_PRIVATE_CIDR=198.19.47.0/24',
    'WEBSERVERS=1',
    '',
  ].join('\n'),
);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const scale = (n: number) =>
  helper('ExecuteOnAutoscaler', ['--config', f.file, '--', '/opt/adt/roles/autoscaler/ManuallyScale.ts', String(n)]);
const deaths: number[] = [];
const scaleOuts: number[] = [];
try {
  const d = await zx('deploy.mjs', ['--config', f.file]);
  if (d.exitCode !== 0) throw new Error(d.stderr);
  let n = 1;
  for (let round = 0; round < 3; round++) {
    // +2: from the command to both new servers in DNS.
    const before = await aRecords(f);
    let t0 = Date.now();
    await scale((n += 2));
    if (!(await until(async () => (await aRecords(f)).length === n, 120_000))) throw new Error('scale-out did not finish in 120 s');
    scaleOuts.push((Date.now() - t0) / 1000);
    // A death: kill one of the new ones, time until its record is gone.
    const victim = (await aRecords(f)).find((ip) => !before.includes(ip))!;
    const server = (
      await helper('status', ['--config', f.file, '--json']).then(
        (r) => JSON.parse(r.stdout) as { servers: { name: string; publicIp: string }[] },
      )
    ).servers.find((s) => s.publicIp === victim)!;
    t0 = Date.now();
    await helper('ExecuteOnWebserver', [
      '--config',
      f.file,
      '--name',
      server.name,
      '--',
      'sh',
      '-c',
      'kill $(cat /run/nginx-adt.pid) $(cat /run/php/adt-fpm.pid)',
    ]);
    if (!(await until(async () => !(await aRecords(f)).includes(victim), 60_000))) throw new Error('record not removed in 60 s');
    deaths.push((Date.now() - t0) / 1000);
    // Let the replacement settle before the next round.
    await until(async () => (await aRecords(f)).length === n, 120_000);
    await sleep(3000);
  }
} finally {
  await zx('destroy.mjs', ['--config', f.file]);
  await rm(dir, { recursive: true, force: true });
}
const result = {
  machine: `${cpus().length} x ${cpus()[0]?.model.trim()}`,
  recordGoneSeconds: median(deaths),
  scaleOutOf2Seconds: median(scaleOuts),
  rounds: { deaths, scaleOuts },
};
if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`Production-mode reactions, local provider, default settings, median of 3; ${result.machine}\n`);
  console.log('| measure | seconds | target |\n|---|---:|---:|');
  console.log(`| webserver dies -> its A record gone | ${result.recordGoneSeconds.toFixed(1)} | < 10 |`);
  console.log(`| ManuallyScale.ts +2 -> both new webservers in DNS | ${result.scaleOutOf2Seconds.toFixed(1)} | < 60 |`);
  console.log(
    `\nrounds: deaths ${deaths.map((x) => x.toFixed(1)).join(', ')}; scale-outs ${scaleOuts.map((x) => x.toFixed(1)).join(', ')}`,
  );
}
