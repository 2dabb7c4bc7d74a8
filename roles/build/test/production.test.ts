/**
 * Production mode on the local provider (cloud `tpr`, 198.19.42.0/24 + 198.19.43.0/24): an
 * autoscaler keeps the desired number of healthy webservers behind DNS round robin. A session signed
 * in through one webserver is valid on the other (one set of WordPress keys and salts). Scale out and
 * in with ManuallyScale.ts (on the autoscaler, over SSH) while the outsider keeps loading the site,
 * then a webserver dies. A webserver the autoscaler made got no secret in its user-data; a changed
 * bundle reaches only the webservers made after it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { keys } from '@adt/configstore';
import { cleanup, setup } from '@adt/test-utils';
import {
  aRecords,
  fetchFromOutsider,
  helper,
  localCloudOf,
  openTestFleet,
  productionFleet,
  removeFleet,
  sampleSite,
  until,
  zx,
  type Fleet,
} from './_fleet.ts';
import { installWordPress, siteCurl } from './_site.ts';

interface Summary {
  servers: { role: string; name: string; publicIp: string }[];
  bundle: { sha256: string };
}
interface StatusJson {
  bundle: { sha256: string } | null;
  servers: { role: string; name: string; bundle: string | null; health: string }[];
  events: { action: string; reason: string; server?: string }[];
}

const test = suite<{ f: Fleet; summary: Summary }>('production mode: autoscaling behind DNS round robin (local provider)');

setup(test, async (ctx) => {
  ctx.f = await productionFleet('tpr', 42, ['WEBSERVERS=2', 'AUTOSCALERS=1', 'MAX_WEBSERVERS=6', 'READY_TIMEOUT=600']);
});
test.after(async (ctx) => cleanup('the tpr fleet', [() => removeFleet(ctx.f)]));

const webservers = async (f: Fleet) =>
  (await localCloudOf(f.file).list({ buildId: 'tpr1', role: 'webserver' })).filter((s) => s.state === 'running');
const manuallyScale = (f: Fleet, n: string) =>
  helper('ExecuteOnAutoscaler', ['--config', f.file, '--', '/opt/adt/roles/autoscaler/ManuallyScale.ts', n]);
const statusOf = async (f: Fleet): Promise<StatusJson> => {
  const st = await helper('status', ['--config', f.file, '--json']);
  assert.is(st.exitCode, 0, st.stderr);
  return JSON.parse(st.stdout) as StatusJson;
};

test('deploy builds an autoscaler, the database and 2 webservers, both in DNS', async (ctx) => {
  const { f } = ctx;
  const r = await zx('deploy.mjs', ['--config', f.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Summary;
  ctx.summary = out;
  assert.equal(out.servers.map((s) => s.role).sort(), ['autoscaler', 'database', 'webserver', 'webserver']);
  const ips = out.servers
    .filter((s) => s.role === 'webserver')
    .map((s) => s.publicIp)
    .sort();
  assert.equal(await aRecords(f), ips);
  const st = await statusOf(f);
  assert.match(st.servers.find((s) => s.role === 'autoscaler')!.health, /scaling service running/);
});

test('one application configuration: a session signed in through one webserver is valid on the other', async ({ f, summary }) => {
  const [a, b] = summary.servers.filter((s) => s.role === 'webserver');
  const jar = join(f.dir, 'session.cookies');
  const visitor = (ip: string) => siteCurl(f.cloudId, f.caFile, f.host, ip);
  const withSession =
    (ip: string) =>
    (...args: string[]) =>
      visitor(ip)('-c', jar, '-b', jar, ...args);
  const statusAndTarget = ['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}'];
  assert.is(await installWordPress(visitor(a!.publicIp), f.host, 'Production test'), '200');
  // WordPress's login form sets its test cookie first, as a browser would get it.
  await withSession(a!.publicIp)('-o', '/dev/null', `https://${f.host}/wp-login.php`);
  const form = { log: 'admin', pwd: 'Correct-Horse-Battery-9', testcookie: '1', 'wp-submit': 'Log In' };
  const login = await withSession(a!.publicIp)(
    ...statusAndTarget,
    ...Object.entries(form).flatMap(([k, v]) => ['--data-urlencode', `${k}=${v}`]),
    `https://${f.host}/wp-login.php`,
  );
  assert.is(login.stdout.trim(), `302 https://${f.host}/wp-admin/`, `signed in through ${a!.name}`);
  for (const w of [a!, b!]) {
    const r = await withSession(w.publicIp)(...statusAndTarget, `https://${f.host}/wp-admin/`);
    assert.is(r.stdout.trim(), '200', `${w.name} (${w.publicIp}) takes the session made through ${a!.name}`);
  }
  // Without the session the same page sends a visitor to sign in: the 200s above are the session's.
  const anonymous = await visitor(b!.publicIp)(...statusAndTarget, `https://${f.host}/wp-admin/`);
  assert.match(anonymous.stdout, /^302 https:\/\/[^ ]+\/wp-login\.php/);
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
    const up = await manuallyScale(f, '4');
    assert.is(up.exitCode, 0, up.stderr);
    assert.ok(
      await until(async () => (await aRecords(f)).length === 4 && (await webservers(f)).length === 4, 600_000),
      `4 webservers in DNS (have ${(await aRecords(f)).join(', ')})`,
    );
    for (const ip of await aRecords(f)) assert.ok([200, 302].includes(await fetchFromOutsider(f, ip)), `${ip} serves`);
    const down = await manuallyScale(f, '1');
    assert.is(down.exitCode, 0, down.stderr);
    assert.ok(await until(async () => (await webservers(f)).length === 1, 180_000), 'one webserver left');
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
  assert.ok(dying, 'a webserver to kill');
  const sampler = sampleSite(f, 300);
  let killedAt = Date.now();
  try {
    // The moment of death is the server's own (its clock is this machine's): not the helper's start-up over SSH.
    const kill = await helper('ExecuteOnWebserver', [
      '--config',
      f.file,
      '--name',
      dying!.name,
      '--',
      'sh',
      '-c',
      'date +%s%3N; kill $(cat /run/nginx-adt.pid) $(cat /run/php/adt-fpm.pid)',
    ]);
    assert.is(kill.exitCode, 0, kill.stderr);
    killedAt = Number(/: (\d{13})$/m.exec(kill.stdout)?.[1]);
    assert.ok(killedAt > 0, `the time of the kill: ${kill.stdout}`);
    assert.ok(await until(async () => !(await aRecords(f)).includes(dying!.publicIp!), 30_000), 'its record goes');
    const gone = (Date.now() - killedAt) / 1000;
    // Probes every 1 s, 2 failures, 2 s probe timeout: well under 10 s.
    assert.ok(gone < 10, `record gone after ${gone} s`);
    assert.ok(
      await until(async () => {
        const ips = await aRecords(f);
        return ips.length === 1 && ips[0] !== dying!.publicIp && [200, 302].includes(await fetchFromOutsider(f, ips[0]!));
      }, 600_000),
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
  const actions = (await statusOf(f)).events.map((e) => `${e.action}: ${e.reason}`);
  assert.ok(
    actions.some((a) => /^remove-dns: .* is unhealthy/.test(a)),
    actions.join('\n'),
  );
  assert.ok(
    actions.some((a) => a === 'create: replace' || a.startsWith('create: replace (from image ')),
    actions.join('\n'),
  );
});

test("a webserver the autoscaler made: no secret of the deployment in its user-data; its envelope's link is dead once it is ready", async ({
  f,
  summary,
}) => {
  const byAutoscaler = async () => (await webservers(f)).filter((s) => !summary.servers.some((d) => d.name === s.name));
  assert.ok(await until(async () => (await byAutoscaler()).length > 0, 600_000), 'a webserver the autoscaler made (the replacement)');
  const made = await byAutoscaler();
  const fleet = await openTestFleet(f.file);
  let creds;
  let tls;
  let app;
  try {
    creds = await fleet.store.get(keys.dbCredentials);
    tls = await fleet.store.get(keys.siteTls);
    app = await fleet.store.get(keys.applicationSecrets);
    for (const s of made) {
      assert.ok(await until(() => fleet.store.exists(keys.ready('webserver', s.name)), 600_000), `${s.name} is ready`);
    }
  } finally {
    await fleet.close();
  }
  const cloud = localCloudOf(f.file);
  for (const s of made) {
    const secrets: Record<string, string> = {
      'datastore key': readFileSync(join(f.dir, 'state/builds/tpr1/datastore.key'), 'utf8').trim(),
      'DB password': creds!.password,
      'TLS key': tls!.key.split('\n')[1]!,
      "the application's AUTH_KEY": app!.wordpressSalts.AUTH_KEY!,
      // Its own SSH host key (made by the autoscaler, delivered in its envelope only).
      'its SSH host key': (await cloud.exec(s.name, ['cat', '/etc/ssh/ssh_host_ed25519_key'])).stdout.split('\n')[1]!,
    };
    const ud = (await cloud.exec(s.name, ['cat', '/var/lib/cloud/instance/scripts/part-001'])).stdout;
    assert.match(ud, /^#!\/bin\/sh\n# First boot of .*, a webserver of build tpr1/, `${s.name}'s user-data`);
    // The fleet's one set of keys and salts, as on the webservers the deploy made.
    const config = (await cloud.exec(s.name, ['cat', '/etc/wordpress/config-www-tpr-test.php'])).stdout;
    for (const [name, salt] of Object.entries(app!.wordpressSalts))
      assert.ok(config.includes(`define('${name}', '${salt}');`), `${s.name}'s WordPress config has the fleet's ${name}`);
    for (const [what, secret] of Object.entries(secrets)) {
      assert.ok(secret && secret.length >= 20, what);
      assert.not.ok(ud.includes(secret), `${what} in the user-data of ${s.name}`);
    }
    const url = /printf '[^']*' '([^']+)'/.exec(ud)?.[1];
    assert.ok(url?.includes('/bootstrap/'), `the envelope link in ${s.name}'s user-data`);
    const r = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', url!], { reject: false });
    assert.ok(['403', '404'].includes(r.stdout), `${s.name}'s envelope link answers ${r.stdout}`);
  }
});

test('a re-run with a changed bundle publishes it: running servers keep theirs, a webserver the autoscaler builds after runs it', async ({
  f,
  summary,
}) => {
  const r = await zx('deploy.mjs', ['--config', f.file, '--json'], { env: { ADT_BUNDLE_NOTE: `changed ${process.pid}` } });
  assert.is(r.exitCode, 0, r.stderr);
  const again = JSON.parse(r.stdout) as Summary;
  assert.is.not(again.bundle.sha256, summary.bundle.sha256, 'a new bundle');
  assert.match(r.stderr, /servers running an older bundle keep it, servers made from now on get this one/);
  const before = await statusOf(f);
  assert.is(before.bundle?.sha256, again.bundle.sha256, 'the datastore names the new one');
  for (const s of before.servers) assert.is(s.bundle, summary.bundle.sha256.slice(0, 12), `${s.name} runs the bundle it booted with`);
  const running = before.servers.filter((s) => s.role === 'webserver').map((s) => s.name);
  assert.ok(running.length > 0, 'webservers run');
  const up = await helper('AdjustScaling', ['--config', f.file, String(running.length + 1)]);
  assert.is(up.exitCode, 0, up.stderr);
  const fleet = await openTestFleet(f.file);
  let added: string | undefined;
  try {
    assert.ok(
      await until(async () => {
        added = (await webservers(f)).find((s) => !running.includes(s.name))?.name;
        return Boolean(added) && (await fleet.store.exists(keys.ready('webserver', added!)));
      }, 600_000),
      'the autoscaler built a webserver, and it is ready',
    );
  } finally {
    await fleet.close();
  }
  const after = await statusOf(f);
  for (const s of after.servers) {
    const expected = s.name === added ? again.bundle.sha256 : summary.bundle.sha256;
    assert.is(
      s.bundle,
      expected.slice(0, 12),
      `${s.name} runs the bundle ${s.name === added ? 'published before it was made' : 'it booted with'}`,
    );
  }
  assert.ok(
    after.events.some((e) => e.action === 'create' && e.server === added),
    `the autoscaler's create event names ${added}`,
  );
});

test.run();
