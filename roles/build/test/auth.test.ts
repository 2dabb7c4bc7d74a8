/**
 * WEB_FIREWALL=auth end to end (cloud `tau`, 198.19.48.0/24 + 198.19.49.0/24): port 443 of the
 * webserver refuses the outsider; a real headless Chromium inside the outsider namespace signs in
 * on the authentication server through the emailed link (read from the local mail catcher); the
 * site then answers the outsider; after the grant expires it refuses again. A reused link is refused.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { cleanup, setup } from '@adt/test-utils';
import { fetchFromOutsider, helper, productionFleet, removeFleet, root, until, zx, type Fleet } from './_fleet.ts';
import { outsiderStatus, siteCurl } from './_site.ts';

const test = suite<{ f: Fleet; web: string; auth: string; link: string }>('authentication server (local cloud, real browser)');

setup(test, async (ctx) => {
  // A development fleet with the authentication server (productionFleet writes the common settings).
  ctx.f = await productionFleet('tau', 48, [
    'MODE=development',
    'WEB_FIREWALL=auth',
    'AUTH_ALLOW=ann@tau.test',
    'AUTH_GRANT_MINUTES=1',
    'READY_TIMEOUT=600',
  ]);
});
test.after(async (ctx) => cleanup('the tau fleet', [() => removeFleet(ctx.f)]));

const spki = (pemFile: string) =>
  createHash('sha256')
    .update(new X509Certificate(readFileSync(pemFile)).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
const refused = async (f: Fleet, ip: string) => (await fetchFromOutsider(f, ip)) === 0;

test('before sign-in the site refuses the outsider; the auth server answers it', async (ctx) => {
  const r = await zx('deploy.mjs', ['--config', ctx.f.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { servers: { role: string; publicIp: string }[]; authCaFile: string | null };
  assert.is(out.authCaFile, ctx.f.caFile, 'the summary names the file to trust for the sign-in page');
  ctx.web = out.servers.find((s) => s.role === 'webserver')!.publicIp;
  ctx.auth = out.servers.find((s) => s.role === 'auth')!.publicIp;
  assert.ok(await refused(ctx.f, ctx.web), 'port 443 of the webserver is closed to the outsider');
  const page = await outsiderStatus('tau', 'auth.tau.test', ctx.auth, ctx.f.caFile);
  assert.is(page.stdout, '200');
  // It holds only what it needs: its own key decrypts its secrets, not the deployment's.
  const creds = await helper('ExecuteOnAuth', [
    '--config',
    ctx.f.file,
    '--',
    '/opt/adt/roles/auth/providerscripts/datastore/configwrapper/GetDBCredential',
    'user',
  ]);
  assert.is.not(creds.exitCode, 0, 'the auth server cannot read the database credentials');
  const dbCreds = await helper('ExecuteOnDatabase', [
    '--config',
    ctx.f.file,
    '--',
    '/opt/adt/roles/database/providerscripts/datastore/configwrapper/GetDBCredential',
    'user',
  ]);
  assert.is(dbCreds.exitCode, 0, 'while the database server can');
});

test("signing in with a real browser opens the site to that browser's address; after expiry it closes", async (ctx) => {
  const state = join(ctx.f.dir, 'state');
  const options = {
    authUrl: 'https://auth.tau.test/',
    email: 'ann@tau.test',
    mailDir: join(state, 'mail/tau/messages'),
    hosts: [
      ['auth.tau.test', ctx.auth],
      ['www.tau.test', ctx.web],
    ],
    spki: [spki(join(state, 'builds/tau1/tls-auth/server.crt')), spki(join(state, 'builds/tau1/tls/server.crt'))],
  };
  const b = await execa(
    'ip',
    ['netns', 'exec', 'tau-outsider', process.execPath, join(root, 'roles/build/test/browser/sign-in.mjs'), JSON.stringify(options)],
    { cwd: root, reject: false, timeout: 120_000 },
  );
  assert.is(b.exitCode, 0, b.stderr);
  const seen = JSON.parse(b.stdout.trim().split('\n').pop()!) as Record<string, string | boolean>;
  assert.is(seen.title, 'Sign in to reach www.tau.test');
  assert.is(seen.afterAsk, 'Check your email');
  assert.is(seen.gotMail, true);
  assert.is(seen.afterVerify, 'Access granted');
  assert.match(String(seen.granted), /This device \(198\.19\.48\.254\) may reach www\.tau\.test/);
  ctx.link = String(seen.link);
  const opened = Date.now();
  assert.ok(await until(async () => !(await refused(ctx.f, ctx.web)), 30_000), 'the site answers the outsider within a firewall period');
  assert.ok(await until(async () => refused(ctx.f, ctx.web), 120_000), 'and refuses it again after the grant expired');
  assert.ok(Date.now() - opened > 40_000, "not before the grant's minute");
});

test('the used link is refused when used again', async (ctx) => {
  const token = new URL(ctx.link).searchParams.get('token')!;
  const jar = join(ctx.f.dir, 'jar');
  const curl = (...a: string[]) => siteCurl('tau', ctx.f.caFile, 'auth.tau.test', ctx.auth)('-c', jar, '-b', jar, ...a);
  const confirm = (await curl(`https://auth.tau.test/verify?token=${token}`)).stdout;
  const csrf = /name="csrf" value="([^"]+)"/.exec(confirm)![1]!;
  const again = await curl(
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '--data-urlencode',
    `csrf=${csrf}`,
    '--data-urlencode',
    `token=${token}`,
    'https://auth.tau.test/verify',
  );
  assert.is(again.stdout, '410');
  assert.ok(await refused(ctx.f, ctx.web), 'and opens nothing');
});

test.run();
