/**
 * Backups of a running fleet, end to end on the local provider (cloud `tbk`, 198.19.40.0/24 +
 * 198.19.41.0/24), encrypted with a key the user holds: content made through WordPress (a post and
 * an uploaded file, over XML-RPC from the outsider), a backup, a disaster, a restore that gives back
 * the same files and rows (the roles' commands over SSH); then the build is destroyed with a
 * shutdown backup and a new build starts from it (RESTORE_FROM=latest); a baseline; and the
 * servers' own cron taking the scheduled backups. The builds without a schedule have none
 * (BACKUP_SCHEDULE empty), so the backups each case finds are the ones it made.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { Backups } from '@adt/backup';
import { keys } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { freePort, sleep } from '@adt/core';
import { cleanup, quietAwsSdk, setup } from '@adt/test-utils';
import { installWordPress, siteCurl } from './_site.ts';
import { localCloudOf, openTestFleet, root } from './_fleet.ts';

quietAwsSdk();
// Bounded, generously: the machine is shared, and a first deploy may prepare the roles' images.
const zx = (script: string, args: string[]) =>
  execa(join(root, 'node_modules/.bin/zx'), [join(root, 'roles/build', script), ...args], { cwd: root, reject: false, timeout: 1_500_000 });
const helper = (name: string, args: string[]) => execa(join(root, 'roles/build', name), args, { reject: false, timeout: 300_000 });
const HOST = 'www.tbk.test';
const OTHER = 'blog.other.test';
const CRON_HOST = 'cron.tbk.test';
const PASSWORD = 'Correct-Horse-Battery-9';
/** Every build of the file, with its site. */
const BUILDS = { k1: HOST, k2: HOST, k3: HOST, k4: OTHER, k5: CRON_HOST } as const;
type BuildId = keyof typeof BUILDS;

interface Ctx {
  dir: string;
  file: string;
  s3Port: number;
  ip: string;
  ca: string;
  dbName: string;
  title: string;
  uploadUrl: string;
  files: string;
  rows: string;
}
const test = suite<Ctx>('backups of a running fleet (local provider)');

async function writeConfig(ctx: Ctx, buildId: BuildId, extra: string[] = []) {
  await writeFile(
    ctx.file,
    [
      `SITE_URL=${BUILDS[buildId]}`,
      `BUILD_ID=${buildId}`,
      `STATE_DIR=${join(ctx.dir, 'state')}`,
      `S3_PORT=${ctx.s3Port}`,
      'LOCAL_CLOUD_ID=tbk',
      'LOCAL_PUBLIC_CIDR=198.19.40.0/24',
      'LOCAL_PRIVATE_CIDR=198.19.41.0/24',
      `BACKUP_KEY_FILE=${join(ctx.dir, 'backup.key')}`,
      'READY_TIMEOUT=600',
      // No scheduled backups unless the case asks for them (the servers' cron runs them).
      ...(extra.some((x) => x.startsWith('BACKUP_SCHEDULE=')) ? [] : ['BACKUP_SCHEDULE=']),
      ...extra,
      '',
    ].join('\n'),
  );
}

async function deploy(ctx: Ctx) {
  const r = await zx('deploy.mjs', ['--config', ctx.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { caFile: string; servers: { role: string; publicIp: string }[] };
  ctx.ip = out.servers.find((s) => s.role === 'webserver')!.publicIp;
  ctx.ca = out.caFile;
  return r;
}

const curl = (ctx: Ctx) => siteCurl('tbk', ctx.ca, HOST, ctx.ip);

/** A WordPress XML-RPC call from the outsider; the response body. */
async function xmlrpc(ctx: Ctx, method: string, params: string[]): Promise<string> {
  const values = params.map((p) => `<param><value>${p}</value></param>`).join('');
  const body = `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${values}</params></methodCall>`;
  return (await curl(ctx)('-H', 'Content-Type: text/xml', '--data-binary', body, `https://${HOST}/xmlrpc.php`)).stdout;
}
const str = (s: string) => `<string>${s}</string>`;
const member = (name: string, value: string) => `<member><name>${name}</name><value>${value}</value></member>`;

/** sha256 of every uploaded file, and checksums of the tables that hold posts. */
async function snapshot(ctx: Ctx) {
  const files = (
    await helper('ExecuteOnWebserver', [
      '--config',
      ctx.file,
      '--',
      'sh',
      '-c',
      'cd /var/lib/adt/site/uploads && find . -type f -exec sha256sum {} + | sort',
    ])
  ).stdout;
  const rows = (
    await helper('ExecuteOnDatabase', [
      '--config',
      ctx.file,
      '--',
      'mariadb',
      '--defaults-file=/etc/mysql/adt.cnf',
      '--batch',
      ctx.dbName,
      '-e',
      'CHECKSUM TABLE wp_posts, wp_postmeta, wp_options; SELECT COUNT(*) FROM wp_posts;',
    ])
  ).stdout;
  return { files, rows };
}

/** Destroys a build of the file (idempotent); its result. */
async function destroyBuild(ctx: Ctx, id: BuildId) {
  await writeConfig(ctx, id);
  return zx('destroy.mjs', ['--config', ctx.file]);
}

setup(test, async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-backup-fleet-'));
  ctx.file = join(ctx.dir, 'site.env');
  ctx.s3Port = await freePort();
  await writeFile(join(ctx.dir, 'backup.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
  await writeConfig(ctx, 'k1');
});

test.after(async (ctx) => {
  // Whatever happened above, every build goes (destroy is idempotent; the last one tears the cloud down), then the files.
  const builds = ctx.file && existsSync(ctx.file) ? (Object.keys(BUILDS) as BuildId[]) : [];
  await cleanup('the backups suite', [
    ...builds.map((id) => async () => {
      const d = await destroyBuild(ctx, id);
      if (d.exitCode !== 0) throw new Error(`destroy of ${id} failed: ${d.stderr}`);
    }),
    () => ctx.dir && rm(ctx.dir, { recursive: true, force: true }),
  ]);
});

test('content made through WordPress: a post and an uploaded file', async (ctx) => {
  await deploy(ctx);
  ctx.title = `Backed up ${randomBytes(3).toString('hex')}`;
  assert.is(await installWordPress(curl(ctx), HOST, 'Backups test'), '200');
  const posted = await xmlrpc(ctx, 'wp.newPost', [
    '<int>1</int>',
    str('admin'),
    str(PASSWORD),
    `<struct>${member('post_title', str(ctx.title))}${member('post_content', str('Kept safe.'))}` +
      `${member('post_status', str('publish'))}</struct>`,
  ]);
  assert.match(posted, /<string>\d+<\/string>/, posted);
  const bits = Buffer.from(`uploaded ${ctx.title}\n`).toString('base64');
  const uploaded = await xmlrpc(ctx, 'wp.uploadFile', [
    '<int>1</int>',
    str('admin'),
    str(PASSWORD),
    `<struct>${member('name', str('notes.txt'))}${member('type', str('text/plain'))}${member('bits', `<base64>${bits}</base64>`)}</struct>`,
  ]);
  ctx.uploadUrl = /<name>url<\/name><value><string>([^<]+)<\/string>/.exec(uploaded)?.[1] ?? '';
  if (!ctx.uploadUrl) {
    // What the webserver's shared files looked like (the mount, its service's log), for the report.
    const seen = await helper('ExecuteOnWebserver', [
      '--config',
      ctx.file,
      '--',
      'sh',
      '-c',
      '(date; grep -E "uploads|fuse" /proc/self/mountinfo; ls -la /var/lib/adt/site /var/lib/adt/site/uploads; ' +
        'ps -eo pid,etime,args | grep -E "s3fs|Shared" | grep -v grep; tail -20 /var/log/adt/shared-files.log) 2>&1',
    ]);
    assert.unreachable(`${uploaded}\non the webserver:\n${seen.stdout}${seen.stderr}`);
  }
  assert.match(ctx.uploadUrl, /^https:\/\/www\.tbk\.test\/wp-content\/uploads\/\d{4}\/\d{2}\/notes.*\.txt$/, uploaded);
  assert.is((await curl(ctx)(ctx.uploadUrl)).stdout, `uploaded ${ctx.title}`, 'the upload is served');
  const f = await openTestFleet(ctx.file);
  ctx.dbName = (await f.store.get(keys.dbCredentials).finally(() => f.close()))!.name;
  Object.assign(ctx, await snapshot(ctx));
  assert.match(ctx.files, /notes.*\.txt/);
});

test('backup, disaster, restore: the same files and rows, the site whole again', async (ctx) => {
  const b = await helper('Backup', ['--config', ctx.file, 'daily']);
  assert.is(b.exitCode, 0, b.stderr);
  assert.match(b.stdout, /database .*: backup \S+ verified/);
  assert.match(b.stdout, /webserver .*: backup \S+ verified/);
  const list = JSON.parse((await helper('ListBackups', ['--config', ctx.file, '--json'])).stdout) as {
    backups: { part: string; period: string; encrypted: boolean }[];
  };
  assert.equal(list.backups.map((x) => `${x.part}:${x.period}:${x.encrypted}`).sort(), ['database:daily:true', 'webroot:daily:true']);

  // Disaster: the database's tables and the uploaded files are gone.
  await helper('ExecuteOnDatabase', [
    '--config',
    ctx.file,
    '--',
    'mariadb',
    '--defaults-file=/etc/mysql/adt.cnf',
    '-e',
    `DROP DATABASE ${ctx.dbName}; CREATE DATABASE ${ctx.dbName};`,
  ]);
  // The shared files' store emptied (through the mount: the bucket loses them).
  await helper('ExecuteOnWebserver', ['--config', ctx.file, '--', 'sh', '-c', 'rm -rf /var/lib/adt/site/uploads/*']);
  assert.is.not((await curl(ctx)('-o', '/dev/null', '-w', '%{http_code}', ctx.uploadUrl)).stdout, '200');

  const r = await helper('Restore', ['--config', ctx.file, '--period', 'daily']);
  assert.is(r.exitCode, 0, r.stderr);
  const after = await snapshot(ctx);
  assert.is(after.files, ctx.files, 'the same files');
  assert.is(after.rows, ctx.rows, 'the same rows');
  assert.ok((await curl(ctx)(`https://${HOST}/`)).stdout.includes(ctx.title), 'the post is back on the front page');
  assert.is((await curl(ctx)(ctx.uploadUrl)).stdout, `uploaded ${ctx.title}`);
});

test('destroy --backup takes a shutdown backup; a new build starts from it', async (ctx) => {
  const d = await zx('destroy.mjs', ['--config', ctx.file, '--backup']);
  assert.is(d.exitCode, 0, d.stderr);
  assert.match(d.stdout, /backup \S+ verified/);
  await writeConfig(ctx, 'k2', ['RESTORE_FROM=latest']);
  const r = await deploy(ctx);
  assert.match(r.stderr, /\[7\/9\] restoring the backup/);
  assert.match(r.stderr, /restored \d{8}T\d{6}Z-\w+ \(shutdown/);
  const front = await curl(ctx)(`https://${HOST}/`);
  assert.ok(front.stdout.includes(ctx.title), 'the new build serves the restored post');
  assert.is((await curl(ctx)(ctx.uploadUrl)).stdout, `uploaded ${ctx.title}`, 'and the restored upload');
});

test('a baseline carries no domain and no secret, and another site starts from it with a new admin password', async (ctx) => {
  await writeConfig(ctx, 'k2', ['RESTORE_FROM=latest']);
  const p = await helper('PublishBaseline', ['--config', ctx.file, 'starter']);
  assert.is(p.exitCode, 0, p.stderr);
  assert.match(p.stdout, /mention\(s\) of the domain replaced, 1 password hash\(es\) removed/);
  // What was published: no mention of the site, no hash, no deployment secret.
  const f = await openTestFleet(ctx.file);
  const password = (await f.store.get(keys.dbCredentials))!.password;
  const { endpoint, region, credentials } = f.kit.storage;
  await f.close();
  const driver = s3Driver({ bucket: 'www-tbk-test-backups', endpoint, region, credentials });
  const [m] = await new Backups({
    client: driver.getInstance(),
    bucket: 'www-tbk-test-backups',
    prefix: 'baselines/starter/database/',
    hostname: 't',
  }).list('manual');
  const dump = gunzipSync((await driver.read(m!.parts[0]!.key))!.body).toString('utf8');
  await driver.dispose?.();
  assert.ok(dump.includes('baseline.invalid') && dump.includes(ctx.title), 'the content, with the placeholder domain');
  for (const bad of [HOST, '$P$', '$wp$', password]) assert.not.ok(dump.includes(bad), `${bad} in the baseline`);

  // Another site, another build, from the baseline.
  await writeConfig(ctx, 'k4', ['RESTORE_FROM=baseline:www-tbk-test-backups/starter']);
  const r = await zx('deploy.mjs', ['--config', ctx.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { caFile: string; servers: { role: string; publicIp: string }[] };
  const other = siteCurl('tbk', out.caFile, OTHER, out.servers.find((s) => s.role === 'webserver')!.publicIp);
  const front = (await other(`https://${OTHER}/`)).stdout;
  assert.ok(front.includes(ctx.title) && front.includes(`https://${OTHER}/`), "the post, under the new site's name");
  assert.is((await other(ctx.uploadUrl.replace(HOST, OTHER))).stdout, `uploaded ${ctx.title}`, 'the uploaded file');
  const admin = await helper('AppAdmin', ['--config', ctx.file]);
  const [user, pw] = admin.stdout.split('\n');
  assert.is(user, 'admin');
  const login = await other(
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{redirect_url}',
    '-b',
    'wordpress_test_cookie=WP%20Cookie%20check',
    '--data-urlencode',
    `log=${user}`,
    '--data-urlencode',
    `pwd=${pw}`,
    '--data-urlencode',
    'testcookie=1',
    `https://${OTHER}/wp-login.php`,
  );
  assert.is(login.stdout, `302 https://${OTHER}/wp-admin/`, 'the new administrator password signs in');
  const oldPassword = await other(
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-b',
    'wordpress_test_cookie=WP%20Cookie%20check',
    '--data-urlencode',
    `log=${user}`,
    '--data-urlencode',
    `pwd=${PASSWORD}`,
    '--data-urlencode',
    'testcookie=1',
    `https://${OTHER}/wp-login.php`,
  );
  assert.is(oldPassword.stdout, '200', "the original site's password does not");
});

test('RESTORE_FROM a period with no backup is refused before any server is made', async (ctx) => {
  await writeConfig(ctx, 'k3', ['RESTORE_FROM=monthly']);
  const r = await zx('deploy.mjs', ['--config', ctx.file]);
  assert.is(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /RESTORE_FROM="monthly": there is no complete monthly backup of the site's database/);
  // Before anything is made: no server (not even an image builder), no datastore; only the cloud was reached.
  const progress = `${r.stdout}\n${r.stderr}`;
  assert.match(progress, /\[1\/9\] cloud/);
  assert.not.match(progress, /\[[2-9]\/9\]/, progress);
  assert.not.ok(existsSync(join(ctx.dir, 'state/builds/k3')), 'no files of the build');
  assert.is((await localCloudOf(ctx.file).list({ buildId: 'k3' })).length, 0);
  assert.is((await destroyBuild(ctx, 'k3')).exitCode, 0);
});

test("scheduled backups run on the servers' own cron: a period due every minute is backed up, no one calling Backup", async (ctx) => {
  await writeConfig(ctx, 'k5', ['BACKUP_SCHEDULE=hourly=* * * * *']);
  const r = await zx('deploy.mjs', ['--config', ctx.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const servers = (JSON.parse(r.stdout) as { servers: { role: string; name: string }[] }).servers;
  const cron = await helper('ExecuteOnDatabase', ['--config', ctx.file, '--', 'cat', '/etc/cron.d/adt-backup-database']);
  assert.match(cron.stdout, /\* \* \* \* \* root \/opt\/adt\/roles\/database\/backup\/Backup hourly /, cron.stdout);
  const f = await openTestFleet(ctx.file);
  const installed = (await f.store.get(keys.installedSuccessfully).finally(() => f.close()))!.at;
  // Within about 2 minutes of the deploy's end (cron starts them at the next minute); bounded: 5 minutes.
  type Row = { part: string; period: string; createdAt: string; sourceHost: string; encrypted: boolean };
  let hourly: Row[] = [];
  for (let i = 0; i < 30; i++) {
    const list = await helper('ListBackups', ['--config', ctx.file, '--json']);
    assert.is(list.exitCode, 0, list.stderr);
    hourly = (JSON.parse(list.stdout) as { backups: Row[] }).backups.filter((b) => b.period === 'hourly');
    if (hourly.some((b) => b.part === 'database') && hourly.some((b) => b.part === 'webroot')) break;
    await sleep(10_000);
  }
  const log = await helper('ExecuteOnDatabase', ['--config', ctx.file, '--', 'tail', '-n', '5', '/var/log/adt/backup.log']);
  assert.equal(
    [...new Set(hourly.map((b) => b.part))].sort(),
    ['database', 'webroot'],
    `hourly backups: ${JSON.stringify(hourly)}\n${log.stdout}`,
  );
  for (const b of hourly) {
    assert.is(
      b.sourceHost,
      servers.find((s) => s.role === (b.part === 'database' ? 'database' : 'webserver'))!.name,
      'taken on its server',
    );
    assert.ok(b.encrypted, 'with the key the user holds');
    // Runs before the deploy's last word found the build unfinished and took nothing.
    assert.ok(b.createdAt >= installed, `${b.part} ${b.createdAt} after build/installed-successfully (${installed})`);
  }
});

test('destroying the builds leaves nothing of theirs: no process, namespace, link or chain of the cloud', async (ctx) => {
  for (const id of ['k1', 'k2', 'k4', 'k5'] as const) {
    const d = await destroyBuild(ctx, id);
    assert.is(d.exitCode, 0, d.stderr);
  }
  assert.not.ok((await execa('ip', ['netns', 'list'])).stdout.includes('tbk-'), 'no namespace');
  assert.not.ok((await execa('ip', ['-o', 'link', 'show'])).stdout.includes('tbk'), 'no link');
  assert.not.ok((await execa('iptables', ['-S'])).stdout.includes('ADT-tbk-FW'), 'no firewall chain');
  // What is left of the state is the sites' backups (never deleted: a later deploy starts from them), nothing else.
  const state = join(ctx.dir, 'state');
  assert.equal(readdirSync(state), ['s3'], 'only the object storage');
  const buckets = readdirSync(join(state, 's3', 'tbk', 'data'));
  assert.ok(buckets.includes('www-tbk-test-backups'), buckets.join(', '));
  assert.ok(
    buckets.every((b) => b.endsWith('-backups')),
    `only backup buckets: ${buckets.join(', ')}`,
  );
  const left = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(ctx.dir);
      } catch {
        return false;
      }
    });
  assert.equal(left, [], 'no process of the builds left');
});

test.run();
