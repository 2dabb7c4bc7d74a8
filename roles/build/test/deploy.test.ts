/**
 * deploy.mjs and destroy.mjs as a user runs them (through zx, as processes), on the local provider
 * with a cloud of their own (`tdp`, 198.19.30.0/24 public + 198.19.31.0/24 private) and a state
 * directory of their own: a development fleet that serves WordPress over HTTPS, reached from the
 * outsider through the cloud's DNS; then a converging re-run, then destroy leaves nothing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freePort, processAlive, sleep } from '@adt/core';
import { keys } from '@adt/configstore';
import { readDeployment } from '../src/settings.ts';
import { installWordPress, outsider as outsiderIn, siteCurl } from './_site.ts';
import { localEnv, openStore } from '../src/local-env.ts';

const root = resolve(import.meta.dirname, '../../..');
const zx = join(root, 'node_modules/.bin/zx');
const run = (script: string, args: string[], env: Record<string, string> = {}) =>
  execa(zx, [join(root, 'roles/build', script), ...args], { cwd: root, env, reject: false, timeout: 300_000 });

interface Ctx {
  dir: string;
  state: string;
  file: string;
  summary: {
    url: string;
    servers: { role: string; name: string; publicIp: string; privateIp: string }[];
    caFile: string;
    keyFile: string;
    seconds: number;
  };
  output: string;
  commandLines: Set<string>;
}
const test = suite<Ctx>('deploy and destroy (development mode, local provider)');

test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-deploy-'));
  ctx.state = join(ctx.dir, 'state');
  ctx.file = join(ctx.dir, 'site.env');
  ctx.commandLines = new Set();
  const port = await freePort();
  await writeFile(
    ctx.file,
    [
      'SITE_URL=www.tdp.test',
      'BUILD_ID=t1',
      `STATE_DIR=${ctx.state}`,
      `S3_PORT=${port}`,
      'LOCAL_CLOUD_ID=tdp',
      'LOCAL_PUBLIC_CIDR=198.19.30.0/24',
      'LOCAL_PRIVATE_CIDR=198.19.31.0/24',
      'READY_TIMEOUT=240',
      '',
    ].join('\n'),
  );
});

test.after(async (ctx) => {
  // Whatever happened above, the build goes (destroy is idempotent), then the temporary files.
  if (ctx.file && existsSync(ctx.file)) await run('destroy.mjs', ['--config', ctx.file]);
  if (ctx.dir)
    await rm(ctx.dir, { recursive: true, force: true }).catch((e: Error) => process.stderr.write(`${ctx.dir} not removed: ${e.message}\n`));
});

/** Every process command line on the machine while `p` runs (to look for secrets in them). */
async function sampleCommandLines(p: ResultPromise, into: Set<string>): Promise<void> {
  let done = false;
  void p.finally(() => (done = true));
  for (let i = 0; i < 3000 && !done; i++) {
    for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        into.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
      } catch {}
    }
    await sleep(100);
  }
}

test('a broken deployment file: every problem at once, exit 2, nothing created', async ({ dir }) => {
  const file = join(dir, 'bad.env');
  const state = join(dir, 'bad-state');
  await writeFile(
    file,
    `SITE_URL=not a host\nBUILD_ID=Bad_Id\nMODE=staging\nS3_PORT=80\nWEB_FIREWALL=everyone\nLOCAL_PUBLIC_CIDR=192.0.2.0/24\nPROVIDER=hetzner\nCOLOUR=blue\nSTATE_DIR=${state}\n`,
  );
  const r = await run('deploy.mjs', ['--config', file]);
  assert.is(r.exitCode, 2);
  for (const v of [
    'SITE_URL="not a host"',
    'BUILD_ID="Bad_Id"',
    'MODE="staging"',
    'S3_PORT="80"',
    'WEB_FIREWALL="everyone"',
    'LOCAL_PUBLIC_CIDR="192.0.2.0/24"',
    'PROVIDER="hetzner"',
    'COLOUR: unknown',
  ]) {
    assert.ok(r.stderr.includes(v), `${v} in ${r.stderr}`);
  }
  assert.match(r.stderr, /8 problem\(s\)/);
  assert.not.ok(existsSync(state), 'nothing created');
  assert.not.ok((await execa('ip', ['link', 'show'])).stdout.includes('tdp-'), 'no cloud network');
  const missing = await run('deploy.mjs', ['--config', join(dir, 'nope.env')]);
  assert.is(missing.exitCode, 2);
  assert.match(missing.stderr, /nope\.env does not exist/);
  const option = await run('deploy.mjs', ['--colour']);
  assert.is(option.exitCode, 2);
  assert.match(option.stderr, /--colour/);
});

test('--dry-run prints the plan and creates nothing', async ({ file, state }) => {
  const r = await run('deploy.mjs', ['--config', file, '--dry-run', '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.dryRun, true);
  assert.is(out.plan.configBucket, 'www-tdp-test-config-t1');
  assert.equal(
    out.plan.servers.map((s: { role: string }) => s.role),
    ['database', 'webserver'],
  );
  assert.equal(out.plan.dns.records, ['www.tdp.test A <webserver public IP>']);
  assert.not.ok(existsSync(state));
});

test('deploy builds a database and a webserver that serve WordPress over HTTPS', async (ctx) => {
  const p = run('deploy.mjs', ['--config', ctx.file, '--json']);
  await sampleCommandLines(p, ctx.commandLines);
  const r = await p;
  ctx.output = `${r.stdout}\n${r.stderr}`;
  assert.is(r.exitCode, 0, r.stderr);
  ctx.summary = JSON.parse(r.stdout);
  assert.is(ctx.summary.url, 'https://www.tdp.test/');
  assert.equal(
    ctx.summary.servers.map((s) => s.role),
    ['database', 'webserver'],
  );
  for (const step of ['[1/7]', '[4/7]', '[5/7]', 'database: ready', 'webserver: ready', '[7/7]'])
    assert.ok(r.stderr.includes(step), `progress shows ${step}`);
  assert.is(statSync(ctx.summary.keyFile).mode & 0o777, 0o600);
});

const outsider = (argv: string[]) => outsiderIn('tdp', argv);

test('from the outsider: the name resolves through the cloud DNS and the site is WordPress, with its database', async ({ summary }) => {
  const web = summary.servers.find((s) => s.role === 'webserver')!;
  const dig = await outsider(['dig', '+short', '@198.19.30.1', 'www.tdp.test', 'A']);
  assert.is(dig.stdout.trim(), web.publicIp);
  const curl = siteCurl('tdp', summary.caFile, 'www.tdp.test', dig.stdout.trim());
  const home = await curl('-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', 'https://www.tdp.test/');
  assert.is(home.stdout, '302 https://www.tdp.test/wp-admin/install.php', home.stderr);
  // The install step writes to the database; the front page then reads the title back from it.
  const title = `Deployed by ADT ${process.pid}`;
  assert.is(await installWordPress(curl, 'www.tdp.test', title), '200');
  const front = await curl('https://www.tdp.test/');
  assert.ok(front.stdout.includes(title), 'the front page shows the title stored in the database');
});

test('the database refuses the outsider and accepts the webserver', async ({ summary, file }) => {
  const db = summary.servers.find((s) => s.role === 'database')!;
  const web = summary.servers.find((s) => s.role === 'webserver')!;
  const fromOutsider = await outsider(['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${db.publicIp}/3306`]);
  assert.is.not(fromOutsider.exitCode, 0, 'outsider refused');
  const env = localEnv(readDeployment(file, {}));
  const fromWeb = await env.cloud.exec(web.name, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${db.privateIp}/3306`], {
    nothrow: true,
  });
  assert.is(fromWeb.exitCode, 0, 'webserver accepted');
});

test('no secret in any output, log or command line of the run', async (ctx) => {
  const env = localEnv(readDeployment(ctx.file, {}));
  const store = openStore(env);
  const creds = await store.get(keys.dbCredentials);
  const tls = await store.get(keys.siteTls);
  await store.driver.dispose?.();
  const secrets = {
    'DB password': creds!.password,
    'datastore key': readFileSync(ctx.summary.keyFile, 'utf8').trim(),
    'TLS key': tls!.key.split('\n')[1],
  };
  const logs: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && /\.log$|\/log\//.test(p)) logs.push(p);
    }
  };
  walk(ctx.state);
  assert.ok(
    logs.some((l) => l.endsWith('cloud-init-output.log')),
    'server logs were searched',
  );
  assert.ok(logs.length >= 5, `logs found: ${logs.join(', ')}`);
  for (const [what, secret] of Object.entries(secrets)) {
    assert.ok(secret && secret.length >= 20, what);
    assert.not.ok(ctx.output.includes(secret), `${what} in deploy's output`);
    for (const l of logs) assert.not.ok((await readFile(l, 'utf8')).includes(secret), `${what} in ${l}`);
    for (const c of ctx.commandLines) assert.not.ok(c.includes(secret), `${what} on a command line: ${c.slice(0, 80)}`);
  }
  assert.ok(ctx.commandLines.size > 20, 'command lines were sampled');
});

const helper = (name: string, args: string[]) => execa(join(root, 'roles/build', name), args, { reject: false, timeout: 120_000 });

test('status shows the servers ready and healthy; ExecuteOn<Role> runs a command on them', async ({ file, summary }) => {
  const st = await helper('status', ['--config', file, '--json']);
  assert.is(st.exitCode, 0, st.stderr);
  const out = JSON.parse(st.stdout);
  const web = summary.servers.find((s) => s.role === 'webserver')!;
  assert.equal(out.dns.a, [web.publicIp]);
  for (const s of out.servers) assert.ok(s.ready, `${s.name} ready`);
  assert.match(out.servers.find((s: { role: string }) => s.role === 'webserver').health, /^HTTPS (200|302)$/);
  assert.is(out.servers.find((s: { role: string }) => s.role === 'database').health, 'MariaDB answers');
  const ex = await helper('ExecuteOnDatabase', ['--config', file, '--', 'hostname']);
  assert.is(ex.exitCode, 0, ex.stderr);
  const db = summary.servers.find((s) => s.role === 'database')!;
  assert.is(ex.stdout.trim(), `${db.name}: ${db.name}`);
  const cron = await helper('ExecuteOnDatabase', [
    '--config',
    file,
    '--',
    'cat',
    '/etc/cron.d/adt-backup-database',
    '/etc/cron.d/adt-database',
  ]);
  assert.match(cron.stdout, /30 3 \* \* \* root \/opt\/adt\/roles\/database\/backup\/Backup daily/, 'the default backup schedule');
  assert.match(cron.stdout, /\/opt\/adt\/roles\/database\/security\/SetupFirewall/, 'the firewall every minute');
  const none = await helper('ExecuteOnAuth', ['--config', file, '--', 'true']);
  assert.is(none.exitCode, 2);
  assert.match(none.stderr, /no auth server in build t1/);
  const failing = await helper('ExecuteOnWebserver', ['--config', file, '--', 'sh', '-c', 'exit 3']);
  assert.is(failing.exitCode, 3);
});

test('re-running deploy converges: the same servers, nothing duplicated', async (ctx) => {
  const r = await run('deploy.mjs', ['--config', ctx.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const again = JSON.parse(r.stdout);
  assert.equal(again.servers, ctx.summary.servers);
  assert.match(r.stderr, /kept \(ready\)/);
  const env = localEnv(readDeployment(ctx.file, {}));
  assert.is((await env.cloud.list({ buildId: 't1' })).length, 2);
});

test('destroy leaves nothing behind: namespaces, links, mounts, processes, state', async (ctx) => {
  const pids = (await execa('ip', ['netns', 'pids', 'tdp-2'])).stdout.split('\n').map(Number).filter(Boolean);
  assert.ok(pids.length > 0, 'the database server runs processes');
  const s3Pid = Number(readFileSync(join(ctx.state, 's3/tdp/s3.pid'), 'utf8'));
  const r = await run('destroy.mjs', ['--config', ctx.file]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /torn down/);
  assert.not.ok((await execa('ip', ['netns', 'list'])).stdout.includes('tdp-'), 'no namespace');
  assert.not.ok((await execa('ip', ['-o', 'link', 'show'])).stdout.includes('tdp'), 'no link');
  assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(ctx.state), 'no mount');
  for (const pid of [...pids, s3Pid]) assert.not.ok(processAlive(pid), `process ${pid} is gone`);
  assert.not.ok((await execa('iptables', ['-S'])).stdout.includes('ADT-tdp-FW'), 'no firewall chain');
  assert.not.ok(existsSync(ctx.state), 'no state left');
});

test.run();
