/**
 * Production mode on the local provider (cloud `tpr`, 198.19.42.0/24 + 198.19.43.0/24): an
 * autoscaler keeps the desired number of healthy webservers behind DNS round robin, and the fleet is
 * one site. A session signed in through one webserver is valid on the others (one set of WordPress
 * keys and salts); a file uploaded through one is served by the others within 2 s (one store: the
 * files bucket, mounted with s3fs); webservers built later serve the uploads and the current
 * release; a release rolls out and back under a request loop with no failed request; a webserver
 * killed while uploads are in flight loses none it acknowledged; a backup holds every upload. Scale
 * out and in with ManuallyScale.ts (on the autoscaler, over SSH) while the outsider keeps loading
 * the site, then a webserver dies. A webserver the autoscaler made got no secret in its user-data;
 * a changed bundle reaches only the webservers made after it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { Backups, backupPrefix } from '@adt/backup';
import { keys } from '@adt/configstore';
import { stockCode } from '@adt/webserver';
import { cleanup, setup } from '@adt/test-utils';
import {
  aRecords,
  fetchFromOutsider,
  helper,
  localCloudOf,
  killWebStack,
  openTestFleet,
  productionFleet,
  removeFleet,
  sampleSite,
  until,
  zx,
  type Fleet,
} from './_fleet.ts';
import { installWordPress, mediaNonce, siteCurl, uploadMedia } from './_site.ts';

interface Summary {
  servers: { role: string; name: string; publicIp: string }[];
  bundle: { sha256: string };
}
interface Upload {
  url: string;
  sha256: string;
  /** Through which webserver it was uploaded. */
  via: string;
}
interface ReleaseJson {
  release: { id: string };
  rollout: { server: string; release: string }[];
}
interface StatusJson {
  bundle: { sha256: string } | null;
  servers: { role: string; name: string; bundle: string | null; health: string }[];
  events: { action: string; reason: string; server?: string }[];
}

const test = suite<{ f: Fleet; summary: Summary; jar: string; nonce: string; uploads: Upload[] }>(
  'production mode: autoscaling behind DNS round robin, one site (local provider)',
);

setup(test, async (ctx) => {
  ctx.f = await productionFleet('tpr', 42, ['WEBSERVERS=3', 'AUTOSCALERS=1', 'MAX_WEBSERVERS=6', 'READY_TIMEOUT=600']);
  ctx.uploads = [];
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

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const visitor = (f: Fleet, ip: string) => siteCurl(f.cloudId, f.caFile, f.host, ip);
/** The body of `url` as the webserver at `ip` serves it (null unless HTTP 200). */
async function fetchBody(f: Fleet, ip: string, url: string): Promise<Buffer | null> {
  const out = join(f.dir, `fetched-${randomBytes(4).toString('hex')}`);
  const r = await visitor(f, ip)('-o', out, '-w', '%{http_code}', url);
  const body = r.stdout === '200' ? await readFile(out) : null;
  await rm(out, { force: true });
  return body;
}
/** The release that answers the home page at `ip` (its X-ADT-Release header), and a test marker of ours. */
async function servedRelease(f: Fleet, ip: string): Promise<{ release: string | null; marker: string | null }> {
  const r = await visitor(f, ip)('-s', '-o', '/dev/null', '-D', '-', `https://${f.host}/`);
  return {
    release: /^x-adt-release: (\S+)/im.exec(r.stdout)?.[1] ?? null,
    marker: /^x-test-marker: (\S+)/im.exec(r.stdout)?.[1] ?? null,
  };
}
/** A file of its own for each upload (random content, a name WordPress keeps). */
async function newFile(f: Fleet, label: string): Promise<{ file: string; name: string; sha256: string }> {
  const body = `${label} ${randomBytes(24).toString('hex')}\n`;
  const name = `${label}-${randomBytes(3).toString('hex')}.txt`;
  const file = join(f.dir, name);
  await writeFile(file, body);
  return { file, name, sha256: sha256(body) };
}

test('deploy builds an autoscaler, the database and 3 webservers, all in DNS', async (ctx) => {
  const { f } = ctx;
  const r = await zx('deploy.mjs', ['--config', f.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Summary;
  ctx.summary = out;
  assert.equal(out.servers.map((s) => s.role).sort(), ['autoscaler', 'database', 'webserver', 'webserver', 'webserver']);
  const ips = out.servers
    .filter((s) => s.role === 'webserver')
    .map((s) => s.publicIp)
    .sort();
  assert.equal(await aRecords(f), ips);
  const st = await statusOf(f);
  assert.match(st.servers.find((s) => s.role === 'autoscaler')!.health, /scaling service running/);
});

test('one application configuration: a session signed in through one webserver is valid on the others', async (ctx) => {
  const { f, summary } = ctx;
  const all = summary.servers.filter((s) => s.role === 'webserver');
  const [a, b] = all;
  const jar = (ctx.jar = join(f.dir, 'session.cookies'));
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
  for (const w of all) {
    const r = await withSession(w.publicIp)(...statusAndTarget, `https://${f.host}/wp-admin/`);
    assert.is(r.stdout.trim(), '200', `${w.name} (${w.publicIp}) takes the session made through ${a!.name}`);
  }
  // Without the session the same page sends a visitor to sign in: the 200s above are the session's.
  const anonymous = await visitor(b!.publicIp)(...statusAndTarget, `https://${f.host}/wp-admin/`);
  assert.match(anonymous.stdout, /^302 https:\/\/[^ ]+\/wp-login\.php/);
  ctx.nonce = await mediaNonce(siteCurl(f.cloudId, f.caFile, f.host, b!.publicIp), f.host, jar);
});

test('one store for the files: an upload through one webserver is served by every other within 2 s', async (ctx) => {
  const { f, summary } = ctx;
  const [a, ...others] = summary.servers.filter((s) => s.role === 'webserver');
  for (let round = 0; round < 3; round++) {
    const up = await newFile(f, `shared${round}`);
    const url = await uploadMedia(visitor(f, a!.publicIp), f.host, ctx.jar, ctx.nonce, up.file, up.name);
    const acknowledged = Date.now();
    assert.ok(url, `WordPress on ${a!.name} acknowledged ${up.name}`);
    ctx.uploads.push({ url: url!, sha256: up.sha256, via: a!.name });
    for (const w of others) {
      let seen = 0;
      for (let i = 0; i < 40 && !seen; i++) {
        const body = await fetchBody(f, w.publicIp, url!);
        if (body && sha256(body) === up.sha256) seen = Date.now();
        else await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(seen, `${w.name} serves ${url}`);
      assert.ok(seen - acknowledged < 2000, `${w.name} served it ${seen - acknowledged} ms after ${a!.name} acknowledged it`);
    }
  }
  // In the deployment's files bucket, not on a webserver's disk.
  const fleet = await openTestFleet(f.file);
  try {
    const files = await fleet.store.get(keys.sharedFiles);
    assert.is(files?.bucket, `www-tpr-test-files-tpr1`);
  } finally {
    await fleet.close();
  }
  const onDisk = await localCloudOf(f.file).exec(a!.name, ['sh', '-c', 'grep " /var/lib/adt/site/uploads " /proc/self/mountinfo']);
  assert.match(onDisk.stdout, / - fuse\.s3fs /, 'the uploads are the s3fs mount of the files bucket');
});

test('s3fs killed on a webserver: its supervisor mounts the shared files again, and the webserver serves new uploads', async (ctx) => {
  const { f, summary } = ctx;
  const [a, b] = summary.servers.filter((s) => s.role === 'webserver');
  const cloud = localCloudOf(f.file);
  const killed = await cloud.exec(b!.name, ['sh', '-c', 'pkill -KILL -x s3fs && echo killed'], { nothrow: true });
  assert.is(killed.stdout.trim(), 'killed', killed.stderr);
  const mounted = async () =>
    (
      await cloud.exec(
        b!.name,
        ['sh', '-c', 'grep -q " /var/lib/adt/site/uploads .* fuse.s3fs " /proc/self/mountinfo && ls /var/lib/adt/site/uploads'],
        {
          nothrow: true,
        },
      )
    ).exitCode === 0;
  assert.ok(await until(mounted, 30_000), 'mounted again');
  const up = await newFile(f, 'remounted');
  const url = await uploadMedia(visitor(f, a!.publicIp), f.host, ctx.jar, ctx.nonce, up.file, up.name);
  assert.ok(url, 'an upload acknowledged');
  assert.ok(
    await until(async () => sha256((await fetchBody(f, b!.publicIp, url!)) ?? '') === up.sha256, 5000),
    `${b!.name} serves the new upload`,
  );
  for (const u of ctx.uploads) assert.is(sha256((await fetchBody(f, b!.publicIp, u.url)) ?? ''), u.sha256, `and ${u.url}`);
  ctx.uploads.push({ url: url!, sha256: up.sha256, via: a!.name });
  const log = (await cloud.exec(b!.name, ['cat', '/var/log/adt/shared-files.log'])).stdout;
  assert.match(log, /SharedFiles exited \(137\); restarting/, 'the supervisor restarted it');
});

test('ManuallyScale.ts refuses a bad count and changes nothing', async ({ f }) => {
  for (const bad of ['-1', 'four', '7']) {
    const r = await manuallyScale(f, bad);
    assert.is(r.exitCode, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, bad === '7' ? /above the configured maximum of 6/ : /whole number from 0 to 6/);
  }
  assert.is((await webservers(f)).length, 3);
});

/** Every request of the sampler got a page (and there were enough of them to tell). */
function noFailedRequest(sampler: ReturnType<typeof sampleSite>, what: string) {
  const failed = sampler.samples.filter((s) => ![200, 302].includes(s.status));
  assert.ok(sampler.samples.length >= 10, `${sampler.samples.length} samples ${what}`);
  assert.equal(
    failed.map((s) => `${new Date(s.at).toISOString()} ${s.ip} -> ${s.status} (A: ${s.ips.join(' ')})`),
    [],
    `every request got a page ${what}`,
  );
}

test('scale to 5: the outsider always gets a page; the new webservers serve the uploads and the current release', async (ctx) => {
  const { f } = ctx;
  const sampler = sampleSite(f);
  try {
    const up = await manuallyScale(f, '5');
    assert.is(up.exitCode, 0, up.stderr);
    assert.ok(
      await until(async () => (await aRecords(f)).length === 5 && (await webservers(f)).length === 5, 600_000),
      `5 webservers in DNS (have ${(await aRecords(f)).join(', ')})`,
    );
    // The visitor goes on a moment, so that the new webservers are asked too.
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    await sampler.stop();
  }
  noFailedRequest(sampler, 'while scaling out');
  const fleet = await openTestFleet(f.file);
  const current = (await fleet.store.get(keys.releases))?.current.id;
  await fleet.close();
  assert.ok(current, 'the site has a current release');
  for (const ip of await aRecords(f)) {
    assert.is((await servedRelease(f, ip)).release, current, `${ip} serves the current release`);
    for (const u of ctx.uploads) assert.is(sha256((await fetchBody(f, ip, u.url)) ?? ''), u.sha256, `${ip} serves ${u.url}`);
  }
});

test('a release rolls out to every webserver under a request loop with no failed request, then rolls back', async ({ f }) => {
  // A release made on this machine: the stock application with a must-use plugin that marks its pages.
  const dir = await mkdtemp(join(tmpdir(), 'adt-tpr-release-'));
  try {
    await stockCode('/usr/share/wordpress', '/var/lib/wordpress/wp-content', dir);
    await mkdir(join(dir, 'wp-content/mu-plugins'), { recursive: true });
    await writeFile(join(dir, 'wp-content/mu-plugins/adt-test-marker.php'), "<?php\nheader('X-Test-Marker: two');\n");
    const fleet = await openTestFleet(f.file);
    const before = (await fleet.store.get(keys.releases))!.current.id;
    await fleet.close();
    const runUnderLoad = async (args: string[]) => {
      const sampler = sampleSite(f, 100);
      try {
        const r = await helper('Release', ['--config', f.file, '--json', ...args], 600_000);
        assert.is(r.exitCode, 0, r.stderr);
        return JSON.parse(r.stdout) as ReleaseJson;
      } finally {
        await sampler.stop();
        noFailedRequest(sampler, `during Release ${args[0]}`);
      }
    };
    const published = await runUnderLoad(['publish', '--from', dir]);
    assert.ok(published.rollout.length >= 5, `rolled out to ${published.rollout.length} webservers`);
    for (const ip of await aRecords(f)) {
      assert.equal(await servedRelease(f, ip), { release: published.release.id, marker: 'two' }, `${ip} serves the new release`);
    }
    const back = await runUnderLoad(['rollback']);
    assert.is(back.release.id, before, 'back to the release before');
    for (const ip of await aRecords(f)) assert.equal(await servedRelease(f, ip), { release: before, marker: null }, `${ip} rolled back`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('production code is read only: WordPress offers no plugin install and names the release command', async ({ f, jar }) => {
  const [ip] = await aRecords(f);
  const install = await visitor(f, ip!)(
    '-b',
    jar,
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `https://${f.host}/wp-admin/plugin-install.php`,
  );
  assert.is(install.stdout, '403', 'plugin-install.php is refused');
  const dashboard = await visitor(f, ip!)('-b', jar, `https://${f.host}/wp-admin/`);
  assert.match(dashboard.stdout, /roles\/build\/Release publish/, 'the dashboard names the release command');
});

test('a webserver killed while uploads are in flight loses none it acknowledged', async (ctx) => {
  const { f } = ctx;
  const cloud = localCloudOf(f.file);
  const [victim] = await webservers(f);
  assert.ok(victim?.publicIp, 'a webserver to kill');
  const acknowledged: Upload[] = [];
  let killed = false;
  const uploading = (async () => {
    for (let i = 0; i < 60; i++) {
      const up = await newFile(f, `inflight${i}`);
      const url = await uploadMedia(visitor(f, victim!.publicIp!), f.host, ctx.jar, ctx.nonce, up.file, up.name);
      if (url) acknowledged.push({ url, sha256: up.sha256, via: victim!.name });
      else if (killed) return;
    }
  })();
  assert.ok(await until(async () => acknowledged.length >= 3, 60_000), 'uploads acknowledged before the kill');
  // As a crash: every process of the server ends at once.
  await cloud.destroy(victim!.id);
  killed = true;
  await uploading;
  assert.ok(acknowledged.length >= 3, `${acknowledged.length} acknowledged`);
  const others = (await aRecords(f)).filter((ip) => ip !== victim!.publicIp);
  for (const u of acknowledged)
    for (const ip of others)
      assert.is(sha256((await fetchBody(f, ip, u.url)) ?? ''), u.sha256, `${ip} serves ${u.url}, acknowledged by the dead one`);
  ctx.uploads.push(...acknowledged);
});

test('a backup after the scale-out holds every upload', async ({ f, uploads }) => {
  const b = await helper('Backup', ['--config', f.file, 'manual', '--json'], 600_000);
  assert.is(b.exitCode, 0, b.stderr);
  const fleet = await openTestFleet(f.file);
  const dir = await mkdtemp(join(tmpdir(), 'adt-tpr-backup-'));
  try {
    const settings = (await fleet.store.get(keys.backups))!;
    const backups = new Backups({ client: fleet.s3, bucket: settings.bucket, prefix: backupPrefix('webroot'), hostname: 'test' });
    const [newest] = await backups.list('manual');
    assert.ok(newest, 'a manual webroot backup');
    await backups.restore(newest!, { webroot: { dir: join(dir, 'content') } });
    for (const u of uploads) {
      const path = new URL(u.url).pathname.slice(1);
      assert.is(sha256(await readFile(join(dir, 'content', path)).catch(() => Buffer.from(''))), u.sha256, `${path} is in the backup`);
    }
    assert.ok(uploads.length >= 6, `${uploads.length} uploads checked`);
  } finally {
    await fleet.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('Release publish --from backup:manual: the code of that backup rolled out; bad sources are refused (exit 2)', async ({ f }) => {
  const r = await helper('Release', ['--config', f.file, '--json', 'publish', '--from', 'backup:manual'], 600_000);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as ReleaseJson;
  assert.ok(out.rollout.length >= 4, `${out.rollout.length} webservers`);
  for (const ip of await aRecords(f)) assert.is((await servedRelease(f, ip)).release, out.release.id, `${ip} serves it`);
  const list = await helper('Release', ['--config', f.file, 'list']);
  assert.match(list.stdout, new RegExp(`^current:  ${out.release.id} .* backup \\S+ \\(manual\\)$`, 'm'), list.stdout);
  for (const [args, message] of [
    [['publish'], /give --from/],
    [['publish', '--from', '/nonexistent/site'], /no such directory/],
    [['frobnicate'], /publish, rollback or list/],
  ] as const) {
    const bad = await helper('Release', ['--config', f.file, ...args]);
    assert.is(bad.exitCode, 2, `${args.join(' ')}: ${bad.stderr}`);
    assert.match(bad.stderr, message);
  }
});

test('scale to 1: the outsider always gets a page; DNS ends with exactly the server there', async ({ f }) => {
  const sampler = sampleSite(f);
  try {
    assert.ok(await until(async () => (await aRecords(f)).length === 5, 600_000), 'the killed webserver replaced first');
    const down = await manuallyScale(f, '1');
    assert.is(down.exitCode, 0, down.stderr);
    assert.ok(await until(async () => (await webservers(f)).length === 1, 180_000), 'one webserver left');
    const [last] = await webservers(f);
    assert.equal(await aRecords(f), [last!.publicIp], 'DNS has exactly its address');
    await new Promise((r) => setTimeout(r, 2000));
  } finally {
    await sampler.stop();
  }
  noFailedRequest(sampler, 'while scaling in');
});

test('a webserver that dies leaves DNS within the detection time and is replaced', async ({ f }) => {
  const [dying] = await webservers(f);
  assert.ok(dying, 'a webserver to kill');
  const sampler = sampleSite(f, 300);
  let killedAt = Date.now();
  try {
    // The moment of death is the server's own (its clock is this machine's): not the helper's start-up over SSH.
    const kill = await killWebStack(f, dying!.name, { stamp: true });
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

test('destroy --backup, then a new build from it (RESTORE_FROM=latest): every webserver serves every upload, restored', async (ctx) => {
  const { f } = ctx;
  const d = await zx('destroy.mjs', ['--config', f.file, '--backup']);
  assert.is(d.exitCode, 0, d.stderr);
  assert.match(d.stdout, /backup \S+ verified/);
  const text = await readFile(f.file, 'utf8');
  await writeFile(f.file, `${text.replace('BUILD_ID=tpr1', 'BUILD_ID=tpr2').replace('WEBSERVERS=3', 'WEBSERVERS=2')}RESTORE_FROM=latest\n`);
  ctx.f = { ...f, caFile: join(f.dir, 'state/builds/tpr2/ca/ca.crt') };
  const r = await zx('deploy.mjs', ['--config', f.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stderr, /restoring the backup/);
  assert.match(r.stderr, /shared files put back, release \S+ served here/);
  const out = JSON.parse(r.stdout) as Summary;
  const ips = out.servers.filter((s) => s.role === 'webserver').map((s) => s.publicIp);
  assert.is(ips.length, 2);
  const fleet = await openTestFleet(f.file);
  const current = (await fleet.store.get(keys.releases))?.current;
  await fleet.close();
  assert.match(current?.source ?? '', /^backup \S+ \(shutdown\)$/, 'the new build serves a release made of the backup');
  for (const ip of ips) {
    assert.is((await servedRelease(ctx.f, ip)).release, current!.id, `${ip} serves it`);
    for (const u of ctx.uploads) assert.is(sha256((await fetchBody(ctx.f, ip, u.url)) ?? ''), u.sha256, `${ip} serves ${u.url}`);
  }
});

test.run();
