/**
 * Cloud API calls: our drivers (one process, one HTTP client with kept-alive connections) against
 * the original's way, one CLI process per call (it shells out to doctl / linode-cli / vultr-cli /
 * exo; here one `curl` process per request, the lightest process-per-call client, so the ratio is a
 * floor). Same fake API (loopback), same run, same requests.
 *
 *   npx tsx packages/providers/bench/cloud-api.ts [--json]
 *
 * Work: register N webservers' A records in round robin (a look-up, then a create, per record, as
 * both do to stay idempotent), read the round robin back, then list the build's servers.
 */
import { execa } from 'execa';
import digitaloceanDriver from '../src/drivers/digitalocean.ts';
import { digitaloceanFake } from '../src/fakes/digitalocean.ts';

const N = 25;
const TOKEN = 'bench-token';

async function ours(baseUrl: string): Promise<number> {
  const cloud = digitaloceanDriver({ token: TOKEN, baseUrl, region: 'lon1', size: 's' });
  const dns = cloud.dns('bench.test');
  const t = performance.now();
  for (let i = 1; i <= N; i++) await dns.addA('www.bench.test', `198.51.100.${i}`, 60);
  if ((await dns.listA('www.bench.test')).length !== N) throw new Error('ours: wrong record count');
  await cloud.list({ buildId: 'bench' });
  return performance.now() - t;
}

async function curlPerCall(baseUrl: string): Promise<number> {
  const auth = ['-H', `Authorization: Bearer ${TOKEN}`];
  const records = `${baseUrl}/domains/bench2.test/records`;
  const t = performance.now();
  for (let i = 1; i <= N; i++) {
    const list = await execa('curl', ['-sf', ...auth, `${records}?type=A&name=www.bench2.test&per_page=200`]);
    const have = (JSON.parse(list.stdout) as { domain_records: { data: string }[] }).domain_records.some(
      (r) => r.data === `198.51.100.${i}`,
    );
    if (!have)
      await execa('curl', [
        '-sf',
        ...auth,
        '-H',
        'Content-Type: application/json',
        '-X',
        'POST',
        '-d',
        JSON.stringify({ type: 'A', name: 'www', data: `198.51.100.${i}`, ttl: 60 }),
        records,
      ]);
  }
  const back = await execa('curl', ['-sf', ...auth, `${records}?type=A&name=www.bench2.test&per_page=200`]);
  if ((JSON.parse(back.stdout) as { domain_records: unknown[] }).domain_records.length !== N) throw new Error('curl: wrong record count');
  await execa('curl', ['-sf', ...auth, `${baseUrl}/droplets?tag_name=adt-build-bench&per_page=200`]);
  return performance.now() - t;
}

const fake = digitaloceanFake({ token: TOKEN });
const baseUrl = await fake.listen();
try {
  const setup = digitaloceanDriver({ token: TOKEN, baseUrl }).dns('bench.test');
  await setup.ensureZone('bench.test');
  await setup.ensureZone('bench2.test');
  const runs: { ours: number; curl: number }[] = [];
  for (let r = 0; r < 3; r++) {
    // Fresh records each round: both sides do the same creates.
    for (const records of fake.state.domains.values()) records.length = 0;
    runs.push({ ours: await ours(baseUrl), curl: await curlPerCall(baseUrl) });
  }
  const best = { ours: Math.min(...runs.map((x) => x.ours)), curl: Math.min(...runs.map((x) => x.curl)) };
  const calls = 2 * N + 2;
  const result = {
    calls,
    oursMs: Number(best.ours.toFixed(1)),
    curlPerCallMs: Number(best.curl.toFixed(1)),
    ratio: Number((best.curl / best.ours).toFixed(1)),
  };
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
  else
    process.stdout.write(
      `${calls} API calls (${N} round-robin records, read back, a server list), best of 3:\n` +
        `  ours (one client)        ${result.oursMs} ms\n` +
        `  a process per call (curl) ${result.curlPerCallMs} ms\n` +
        `  process per call / ours  ${result.ratio}x\n`,
    );
} finally {
  await fake.close();
}
