/**
 * Production mode's reactions on the local provider, with the default scaling settings (probes
 * every 2 s, 2 failures, 2 s probe timeout): time from a webserver dying (nginx and php-fpm killed
 * over SSH; the moment by the server's clock) to its A record gone, and from `ManuallyScale.ts` +2
 * (run on the autoscaler over SSH) to both new webservers in DNS. 3 rounds each. Its own cloud `tbs`
 * on 198.19.46.0/24 + 198.19.47.0/24, destroyed at the end (removeFleet: a failed destroy fails the run).
 *
 * Run: npx tsx roles/build/bench/scaling.ts [--json]
 */
import { cpus } from 'node:os';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from '@adt/core';
import { aRecords, helper, removeFleet, until, zx, type Fleet } from '../test/_fleet.ts';

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
    // A shared 2-core machine may take minutes to boot the first servers.
    'READY_TIMEOUT=600',
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
  if (d.exitCode !== 0) throw new Error(`deploy failed: ${d.stderr}${d.stdout.split('\n').slice(-30).join('\n')}`);
  let n = 1;
  for (let round = 0; round < 3; round++) {
    // +2: from the command to both new servers in DNS.
    const before = await aRecords(f);
    let t0 = Date.now();
    const scaled = await scale((n += 2));
    if (scaled.exitCode !== 0) throw new Error(`ManuallyScale.ts ${n} failed: ${scaled.stderr}`);
    if (!(await until(async () => (await aRecords(f)).length === n, 600_000))) throw new Error('scale-out did not finish in 600 s');
    scaleOuts.push((Date.now() - t0) / 1000);
    // A death: kill one of the new ones, time until its record is gone.
    const victim = (await aRecords(f)).find((ip) => !before.includes(ip))!;
    const server = (
      await helper('status', ['--config', f.file, '--json']).then(
        (r) => JSON.parse(r.stdout) as { servers: { name: string; publicIp: string }[] },
      )
    ).servers.find((s) => s.publicIp === victim)!;
    const killed = await helper('ExecuteOnWebserver', [
      '--config',
      f.file,
      '--name',
      server.name,
      '--',
      'sh',
      '-c',
      'date +%s%3N; kill $(cat /run/nginx-adt.pid) $(cat /run/php/adt-fpm.pid)',
    ]);
    if (killed.exitCode !== 0) throw new Error(`killing the webserver ${server.name} failed: ${killed.stderr}`);
    // The moment of death by the server's own clock (this machine's): not the SSH helper's start-up.
    t0 = Number(/: (\d{13})$/m.exec(killed.stdout)?.[1]);
    if (!t0) throw new Error(`no time of death in ${killed.stdout}`);
    if (!(await until(async () => !(await aRecords(f)).includes(victim), 60_000))) throw new Error('record not removed in 60 s');
    deaths.push((Date.now() - t0) / 1000);
    // Let the replacement settle before the next round.
    if (!(await until(async () => (await aRecords(f)).length === n, 600_000))) throw new Error('no replacement in DNS within 600 s');
    await sleep(3000);
  }
} finally {
  // destroy (retried once; a failure is printed and fails the run), then the bench's files.
  await removeFleet(f);
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
