/**
 * deploy.mjs and destroy.mjs as a user runs them (through zx, as processes), on the local provider
 * with a cloud of their own (`tdp`, 198.19.30.0/24 public + 198.19.31.0/24 private) and a state
 * directory of their own: a development fleet that serves WordPress over HTTPS, reached from the
 * outsider through the cloud's DNS; servers that got the toolkit from the role bundle alone and
 * their secrets once; the helpers over SSH with pinned host keys; a converging re-run, a changed
 * bundle; then destroy leaves nothing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freePort, processAlive, sleep } from '@adt/core';
import { keys } from '@adt/configstore';
import { installWordPress, outsider as outsiderIn, siteCurl } from './_site.ts';
import { helper, localCloudOf, openTestFleet, root, until } from './_fleet.ts';

const zx = join(root, 'node_modules/.bin/zx');
const run = (script: string, args: string[], env: Record<string, string> = {}) =>
  execa(zx, [join(root, 'roles/build', script), ...args], { cwd: root, env, reject: false, timeout: 600_000 });

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
    bundle: { sha256: string };
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
  await writeFile(
    ctx.file,
    [
      'SITE_URL=www.tdp.test',
      'BUILD_ID=t1',
      `STATE_DIR=${ctx.state}`,
      `S3_PORT=${await freePort()}`,
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
  for (let i = 0; i < 6000 && !done; i++) {
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
    'SITE_URL=not a host\nBUILD_ID=Bad_Id\nMODE=staging\nS3_PORT=80\nWEB_FIREWALL=everyone\nLOCAL_PUBLIC_CIDR=192.0.2.0/24\n' +
      `PROVIDER=hetzner\nCOLOUR=blue\nSTATE_DIR=${state}\n`,
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
  assert.is(missing.exitCode, 2, missing.stderr);
  assert.match(missing.stderr, /nope\.env does not exist/);
  const option = await run('deploy.mjs', ['--colour']);
  assert.is(option.exitCode, 2, option.stderr);
  assert.match(option.stderr, /--colour/);
});

test('--dry-run is the same pipeline over transports that record: every call shown, nothing created', async ({ file, state }) => {
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
  const calls = (out.apiCalls as { method: string; url: string }[]).map((c) => `${c.method} ${new URL(c.url).pathname}`);
  for (const c of [
    'GET /v1/cloud',
    'PUT /v1/firewalls/t1/webserver',
    'POST /v1/servers',
    'PATCH /api/v1/servers/localhost/zones/tdp.test.',
  ]) {
    assert.ok(calls.includes(c), `${c} in ${calls.join(', ')}`);
  }
  assert.ok(calls.indexOf('PUT /v1/firewalls/t1/webserver') < calls.indexOf('POST /v1/servers'), 'the firewall comes before the servers');
  for (const s3 of ['CreateBucketCommand www-tdp-test-config-t1', 'PutObjectCommand www-tdp-test-config-t1/bootstrap/']) {
    assert.ok(
      (out.s3Calls as string[]).some((c) => c.startsWith(s3)),
      `${s3} in the S3 calls`,
    );
  }
  assert.not.ok(existsSync(state), 'nothing under STATE_DIR');
  assert.not.ok((await execa('ip', ['link', 'show'])).stdout.includes('tdp-'), 'no cloud network');
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
  for (const step of ['[1/8]', '[5/8]', '[6/8]', 'database: ready', 'webserver: ready', '[8/8]']) {
    assert.ok(r.stderr.includes(step), `progress shows ${step}`);
  }
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
  const fromOutsider = await outsider(['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${db.publicIp}/3306`]);
  assert.is.not(fromOutsider.exitCode, 0, 'outsider refused');
  const fromWeb = await helper('ExecuteOnWebserver', [
    '--config',
    file,
    '--',
    'timeout',
    '3',
    'bash',
    '-c',
    `exec 3<>/dev/tcp/${db.privateIp}/3306`,
  ]);
  assert.is(fromWeb.exitCode, 0, `webserver accepted: ${fromWeb.stderr}`);
});

test("servers got the toolkit from the role bundle alone: no checkout, no node_modules, nothing of this machine's", async ({
  file,
  summary,
}) => {
  const checkout = join(root, 'package.json');
  const probe = [
    'sh',
    '-c',
    [
      `test ! -e ${checkout} && echo no-checkout`,
      `test ! -e ${root} && echo no-root`,
      'test ! -e /opt/adt/node_modules && echo no-node-modules',
      'cat /opt/adt/BUNDLE.sha256',
      '/opt/adt/runtime/current/bin/node --version',
      "tr '\\0' ' ' < /proc/1/cmdline; echo",
      'ps -e -o comm= | sort -u | tr "\\n" " "',
    ].join('; '),
  ];
  const r = await helper('ExecuteOnWebserver', ['--config', file, '--', ...probe]);
  assert.is(r.exitCode, 0, r.stderr);
  const lines = r.stdout.split('\n').map((l) => l.replace(/^[^:]+: /, ''));
  assert.equal(lines.slice(0, 3), ['no-checkout', 'no-root', 'no-node-modules']);
  assert.is(lines[3], summary.bundle.sha256, 'the bundle the deploy published');
  assert.is(lines[4], process.version, "the build machine's Node, from the runtime artifact");
  assert.match(lines[5]!, /^\/usr\/bin\/tini /, "PID 1 is the server's own init");
  assert.match(lines[6]!, /sshd/);
  assert.match(lines[6]!, /cron/);
  assert.not.match(lines[6]!, /turbo|uvu|s3rver|pdns_server/, "none of this machine's processes");
});

test('no secret in any user-data, output, log or command line of the run', async (ctx) => {
  const f = await openTestFleet(ctx.file);
  const creds = await f.store.get(keys.dbCredentials);
  const tls = await f.store.get(keys.siteTls);
  const app = await f.store.get(keys.applicationSecrets);
  await f.close();
  const cloud = localCloudOf(ctx.file);
  const secrets: Record<string, string> = {
    'DB password': creds!.password,
    "the application's AUTH_KEY": app!.wordpressSalts.AUTH_KEY!,
    'datastore key': readFileSync(ctx.summary.keyFile, 'utf8').trim(),
    'TLS key': tls!.key.split('\n')[1]!,
  };
  for (const s of ctx.summary.servers) {
    // Each server's SSH host key (made by the build, delivered in its envelope only).
    const hostKey = await cloud.exec(s.name, ['cat', '/etc/ssh/ssh_host_ed25519_key']);
    secrets[`${s.name}'s SSH host key`] = hostKey.stdout.split('\n')[1]!;
  }
  const userData: Record<string, string> = {};
  for (const s of ctx.summary.servers)
    userData[s.name] = (await cloud.exec(s.name, ['cat', '/var/lib/cloud/instance/scripts/part-001'])).stdout;
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
    for (const [name, ud] of Object.entries(userData)) assert.not.ok(ud.includes(secret), `${what} in the user-data of ${name}`);
    for (const l of logs) assert.not.ok((await readFile(l, 'utf8')).includes(secret), `${what} in ${l}`);
    for (const c of ctx.commandLines) assert.not.ok(c.includes(secret), `${what} on a command line: ${c.slice(0, 80)}`);
  }
  assert.ok(ctx.commandLines.size > 20, 'command lines were sampled');
});

test("the one-time path is unusable once the server is ready: its envelope's link leads nowhere", async ({ file, summary }) => {
  const cloud = localCloudOf(file);
  for (const s of summary.servers) {
    const ud = (await cloud.exec(s.name, ['cat', '/var/lib/cloud/instance/scripts/part-001'])).stdout;
    const url = /printf '[^']*' '([^']+)'/.exec(ud)?.[1];
    assert.ok(url?.includes('/bootstrap/'), `the envelope link in ${s.name}'s user-data`);
    const r = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', url!], { reject: false });
    assert.ok(['403', '404'].includes(r.stdout), `${s.name}'s envelope link answers ${r.stdout}`);
    const left = await cloud.exec(s.name, ['sh', '-c', 'test -e /var/lib/adt/boot/envelope.json && echo left || echo gone']);
    assert.is(left.stdout.trim(), 'gone', `${s.name} kept no copy of its envelope's link and key`);
  }
});

test('status shows the servers ready and healthy; ExecuteOn<Role> runs a command on them over SSH', async ({ file, summary }) => {
  const st = await helper('status', ['--config', file, '--json']);
  assert.is(st.exitCode, 0, st.stderr);
  const out = JSON.parse(st.stdout);
  const web = summary.servers.find((s) => s.role === 'webserver')!;
  assert.equal(out.dns.a, [web.publicIp]);
  for (const s of out.servers) assert.ok(s.ready, `${s.name} ready`);
  const release = /^HTTPS (200|302), release r\d{8}T\d{6}Z-[0-9a-f]{6}$/;
  assert.match(out.servers.find((s: { role: string }) => s.role === 'webserver').health, release);
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
  const quoted = await helper('ExecuteOnWebserver', ['--config', file, '--', 'printf', '%s|', 'a b', "it's", '$HOME']);
  assert.match(quoted.stdout, /: a b\|it's\|\$HOME\|/, 'arguments reach the server as they are, never read by its shell');
});

test('CopyTo<Role> and CopyFrom<Role> copy files over SSH', async ({ file, dir }) => {
  const local = join(dir, 'hello.txt');
  await writeFile(local, `hello ${process.pid}\n`);
  const to = await helper('CopyToWebserver', ['--config', file, local, '/root/']);
  assert.is(to.exitCode, 0, to.stderr);
  const cat = await helper('ExecuteOnWebserver', ['--config', file, '--', 'cat', '/root/hello.txt']);
  assert.match(cat.stdout, new RegExp(`hello ${process.pid}`));
  const back = join(dir, 'back');
  await execa('mkdir', ['-p', back]);
  const from = await helper('CopyFromDatabase', ['--config', file, '/etc/hostname', back]);
  assert.is(from.exitCode, 0, from.stderr);
  assert.match(await readFile(join(back, 'hostname'), 'utf8'), /^db-t1-/);
  const bad = await helper('CopyToWebserver', ['--config', file, local]);
  assert.is(bad.exitCode, 2, 'a source and a target are needed');
});

test('host keys are pinned: a server that shows another key than the one recorded at its creation is refused', async ({
  file,
  summary,
}) => {
  const f = await openTestFleet(file);
  const web = summary.servers.find((s) => s.role === 'webserver')!;
  const pinned = (await f.store.get(keys.hostKeys.key(web.name)))!;
  try {
    const other = (await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(f.state.dir, 'other'), '-C', 'other'])).exitCode;
    assert.is(other, 0);
    await f.store.put(keys.hostKeys.key(web.name), { ...pinned, publicKey: readFileSync(join(f.state.dir, 'other.pub'), 'utf8').trim() });
    const r = await helper('ExecuteOnWebserver', ['--config', file, '--', 'true']);
    assert.is(r.exitCode, 255, 'ssh refuses the connection');
    assert.match(r.stderr, /host key|HOST IDENTIFICATION/i);
    await f.store.delete(keys.hostKeys.key(web.name));
    const unknown = await helper('ExecuteOnWebserver', ['--config', file, '--', 'true']);
    assert.is(unknown.exitCode, 1);
    assert.match(unknown.stderr, /no pinned SSH host key/, 'never trusted on first use');
  } finally {
    await f.store.put(keys.hostKeys.key(web.name), pinned);
    await f.close();
  }
  const ok = await helper('ExecuteOnWebserver', ['--config', file, '--', 'true']);
  assert.is(ok.exitCode, 0, ok.stderr);
});

test('re-running deploy converges: the same servers, nothing duplicated', async (ctx) => {
  const r = await run('deploy.mjs', ['--config', ctx.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const again = JSON.parse(r.stdout);
  assert.equal(
    again.servers.map((s: { name: string }) => s.name),
    ctx.summary.servers.map((s) => s.name),
  );
  assert.match(r.stderr, /kept \(ready\)/);
  assert.is((await localCloudOf(ctx.file).list({ buildId: 't1' })).length, 2);
});

test('a re-run with changed role code publishes a new bundle; running servers keep the one they booted with', async (ctx) => {
  const r = await run('deploy.mjs', ['--config', ctx.file, '--json'], { ADT_BUNDLE_NOTE: `changed ${process.pid}` });
  assert.is(r.exitCode, 0, r.stderr);
  const again = JSON.parse(r.stdout);
  assert.is.not(again.bundle.sha256, ctx.summary.bundle.sha256, 'a new bundle');
  assert.match(r.stderr, /servers running an older bundle keep it, servers made from now on get this one/);
  const st = JSON.parse((await helper('status', ['--config', ctx.file, '--json'])).stdout);
  assert.is(st.bundle.sha256, again.bundle.sha256, 'the datastore names the new one');
  for (const s of st.servers) assert.is(s.bundle, ctx.summary.bundle.sha256.slice(0, 12), `${s.name} runs the bundle it booted with`);
});

test('destroy leaves nothing behind: namespaces, links, mounts, processes, state', async (ctx) => {
  const cloud = localCloudOf(ctx.file);
  const db = ctx.summary.servers.find((s) => s.role === 'database')!;
  const pids = (await execa('ip', ['netns', 'pids', `tdp-${db.privateIp.split('.').pop()}`])).stdout
    .split('\n')
    .map(Number)
    .filter(Boolean);
  assert.ok(pids.length > 0, 'the database server runs processes');
  assert.ok((await cloud.list()).length === 2);
  const daemon = Number(readFileSync(join(ctx.state, 'cloud/tdp/cloud.pid'), 'utf8'));
  const r = await run('destroy.mjs', ['--config', ctx.file]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /torn down/);
  assert.not.ok((await execa('ip', ['netns', 'list'])).stdout.includes('tdp-'), 'no namespace');
  assert.not.ok((await execa('ip', ['-o', 'link', 'show'])).stdout.includes('tdp'), 'no link');
  assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(ctx.state), 'no mount');
  // (A process just killed may be a zombie for a moment, until its parent reaps it.)
  for (const pid of [...pids, daemon]) assert.ok(await until(async () => !processAlive(pid), 10_000), `process ${pid} is gone`);
  assert.not.ok((await execa('iptables', ['-S'])).stdout.includes('ADT-tdp-FW'), 'no firewall chain');
  assert.not.ok(existsSync(ctx.state), 'no state left');
});

test.run();
