/**
 * Production mode on the local provider (cloud `tpr`, 198.19.42.0/24 + 198.19.43.0/24): an
 * autoscaler keeps the desired number of healthy webservers behind DNS round robin. Scale out and
 * in with ManuallyScale.ts while the outsider keeps loading the site, then a webserver dies.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readDeployment } from '../src/settings.ts';
import { localEnv } from '../src/local-env.ts';
import { aRecords, fetchFromOutsider, helper, productionFleet, removeFleet, sampleSite, until, zx, type Fleet } from './_fleet.ts';

const test = suite<{ f: Fleet }>('production mode: autoscaling behind DNS round robin (local provider)');

test.before(async (ctx) => {
  ctx.f = await productionFleet('tpr', 42, ['WEBSERVERS=2', 'AUTOSCALERS=1', 'MAX_WEBSERVERS=6']);
});
test.after(async (ctx) => removeFleet(ctx.f));

const webservers = async (f: Fleet) =>
  (await localEnv(readDeployment(f.file, {})).cloud.list({ role: 'webserver' })).filter((s) => s.state === 'running');
const manuallyScale = (f: Fleet, n: string) =>
  helper('ExecuteOnAutoscaler', ['--config', f.file, '--', '/opt/adt/roles/autoscaler/ManuallyScale.ts', n]);

test('deploy builds an autoscaler, the database and 2 webservers, both in DNS', async ({ f }) => {
  const r = await zx('deploy.mjs', ['--config', f.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { servers: { role: string; publicIp: string }[] };
  assert.equal(out.servers.map((s) => s.role).sort(), ['autoscaler', 'database', 'webserver', 'webserver']);
  const ips = out.servers
    .filter((s) => s.role === 'webserver')
    .map((s) => s.publicIp)
    .sort();
  assert.equal(await aRecords(f), ips);
  const st = await helper('status', ['--config', f.file, '--json']);
  assert.match(JSON.parse(st.stdout).servers.find((s: { role: string }) => s.role === 'autoscaler').health, /scaling service running/);
});

test('ManuallyScale.ts refuses a bad count and changes nothing', async ({ f }) => {
  for (const bad of ['-1', 'four', '7']) {
    const r = await manuallyScale(f, bad);
    assert.is(r.exitCode, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, bad === '7' ? /above the configured maximum of 6/ : /whole number from 0 to 6/);
  }
  assert.is((await webservers(f)).length, 2);
});

test('scale to 4 then to 1: the outsider always gets a page; DNS ends with exactly the servers there', async ({ f }) => {
  const sampler = sampleSite(f);
  try {
    assert.is((await manuallyScale(f, '4')).exitCode, 0);
    assert.ok(
      await until(async () => (await aRecords(f)).length === 4 && (await webservers(f)).length === 4, 90_000),
      `4 webservers in DNS (have ${(await aRecords(f)).join(', ')})`,
    );
    for (const ip of await aRecords(f)) assert.ok([200, 302].includes(await fetchFromOutsider(f, ip)), `${ip} serves`);
    assert.is((await manuallyScale(f, '1')).exitCode, 0);
    assert.ok(await until(async () => (await webservers(f)).length === 1, 90_000), 'one webserver left');
    const [last] = await webservers(f);
    assert.equal(await aRecords(f), [last!.publicIp], 'DNS has exactly its address');
  } finally {
    await sampler.stop();
  }
  const failed = sampler.samples.filter((s) => ![200, 302].includes(s.status));
  assert.ok(sampler.samples.length > 20, `${sampler.samples.length} samples`);
  assert.equal(
    failed.map((s) => `${new Date(s.at).toISOString()} ${s.ip} -> ${s.status} (A: ${s.ips.join(' ')})`),
    [],
    'every request got a page',
  );
});

test('a webserver that dies leaves DNS within the detection time and is replaced', async ({ f }) => {
  const [dying] = await webservers(f);
  const sampler = sampleSite(f, 300);
  const killedAt = Date.now();
  try {
    await helper('ExecuteOnWebserver', [
      '--config',
      f.file,
      '--',
      'sh',
      '-c',
      'kill $(cat /run/nginx-adt.pid) $(cat /run/php/adt-fpm.pid)',
    ]);
    assert.ok(await until(async () => !(await aRecords(f)).includes(dying!.publicIp!), 30_000), 'its record goes');
    const gone = (Date.now() - killedAt) / 1000;
    // Probes every 1 s, 2 failures, 2 s probe timeout: well under 10 s.
    assert.ok(gone < 10, `record gone after ${gone} s`);
    assert.ok(
      await until(async () => {
        const ips = await aRecords(f);
        return ips.length === 1 && ips[0] !== dying!.publicIp && [200, 302].includes(await fetchFromOutsider(f, ips[0]!));
      }, 90_000),
      'a replacement serves, alone in DNS',
    );
    assert.ok(await until(async () => !(await webservers(f)).some((s) => s.id === dying!.id), 60_000), 'the dead one is destroyed');
  } finally {
    await sampler.stop();
  }
  // DNS never listed a server that did not answer for longer than the detection time.
  const badSince = new Map<string, number>();
  let worst = 0;
  for (const s of sampler.samples) {
    if (!s.ip) continue;
    if (s.status === 0) {
      const since = badSince.get(s.ip) ?? s.at;
      badSince.set(s.ip, since);
      worst = Math.max(worst, s.at - since);
    } else badSince.delete(s.ip);
  }
  const bad = sampler.samples
    .filter((x) => x.ip && x.status === 0)
    .map((x) => `${(x.at - killedAt) / 1000}s ${x.ip} (A: ${x.ips.join(' ')})`);
  assert.ok(worst < 10_000, `a dead server stayed in DNS for ${worst} ms (dead ${dying!.publicIp}):\n${bad.join('\n')}`);
  const ev = await helper('status', ['--config', f.file, '--json']);
  const actions = (JSON.parse(ev.stdout).events as { action: string; reason: string }[]).map((e) => `${e.action}: ${e.reason}`);
  assert.ok(
    actions.some((a) => /^remove-dns: .* is unhealthy/.test(a)),
    actions.join('\n'),
  );
  assert.ok(
    actions.some((a) => a === 'create: replace'),
    actions.join('\n'),
  );
});

test.run();
