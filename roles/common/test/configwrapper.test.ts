/**
 * The config wrapper commands tested as processes, through a role's own path
 * (roles/webserver/providerscripts/datastore/configwrapper/...), against the embedded S3 server.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import s3Driver from '@adt/configstore/drivers/s3';
import { ConfigStore, generateSecretKey, keys } from '@adt/configstore';
import { quietAwsSdk, removeTempDir, tempDir } from '@adt/test-utils';

quietAwsSdk();
const root = resolve(import.meta.dirname, '../../..');
const wrappers = (role: string) => join(root, 'roles', role, 'providerscripts/datastore/configwrapper');

interface Ctx {
  dir: string;
  s3: EmbeddedS3;
  env: Record<string, string>;
  store: ConfigStore;
}
const test = suite<Ctx>('config wrapper commands');

test.before(async (ctx) => {
  ctx.dir = await tempDir('wrappers');
  ctx.s3 = await startEmbeddedS3({ directory: join(ctx.dir, 's3') });
  const key = generateSecretKey();
  const keyFile = join(ctx.dir, 'datastore.key');
  await writeFile(keyFile, key.toString('hex'), { mode: 0o600 });
  const envFile = join(ctx.dir, 'datastore.env');
  await writeEnvFile(envFile, {
    ADT_S3_ENDPOINT: ctx.s3.endpoint,
    ADT_S3_ACCESS_KEY_ID: ctx.s3.credentials.accessKeyId,
    ADT_S3_SECRET_ACCESS_KEY: ctx.s3.credentials.secretAccessKey,
    ADT_CONFIG_BUCKET: 'www-example-com-config-t1',
    ADT_DATASTORE_KEY_FILE: keyFile,
    ADT_WRITE_BUDGET: 'none',
  });
  ctx.env = { ADT_DATASTORE_ENV: envFile };
  ctx.store = new ConfigStore({
    driver: s3Driver({ bucket: 'www-example-com-config-t1', endpoint: ctx.s3.endpoint, credentials: ctx.s3.credentials }),
    secretKey: key,
    writeBudget: null,
  });
  await ctx.store.ensureBucket();
});

test.after(async (ctx) => {
  await ctx.s3?.stop();
  await removeTempDir(ctx.dir);
});

/** Writes a datastore env file as a host has it (mode 0600), one `NAME=value` line per variable. */
async function writeEnvFile(path: string, vars: Record<string, string>): Promise<void> {
  const lines = Object.entries(vars).map(([name, value]) => `${name}=${value}`);
  await writeFile(path, lines.join('\n') + '\n', { mode: 0o600 });
}

function run(ctx: Ctx, cmd: string, args: string[] = [], opts: { input?: string; role?: string; env?: Record<string, string> } = {}) {
  return execa(join(wrappers(opts.role ?? 'webserver'), cmd), args, {
    env: { ...ctx.env, ...opts.env },
    input: opts.input ?? '',
    reject: false,
    timeout: 60_000,
  });
}

test('every role has the same six commands, one implementation', async () => {
  for (const role of ['webserver', 'database', 'autoscaler', 'build', 'auth']) {
    for (const cmd of [
      'PutToConfigDatastore',
      'GetFromConfigDatastore',
      'ListFromConfigDatastore',
      'DeleteFromConfigDatastore',
      'CheckConfigDatastore',
      'GetDBCredential',
    ]) {
      const r = await execa('readlink', ['-f', join(wrappers(role), cmd)]);
      assert.is(r.stdout, join(root, 'roles/common/bin/adt-run'), `${role}/${cmd}`);
    }
  }
});

test('Put then Get round-trips JSON and text; Check says present/absent by exit code', async (ctx) => {
  assert.is((await run(ctx, 'PutToConfigDatastore', ['scaling/1/desired', '4'])).exitCode, 0);
  assert.is(await ctx.store.get(keys.desiredWebservers(1)), 4);
  const got = await run(ctx, 'GetFromConfigDatastore', ['scaling/1/desired'], { role: 'autoscaler' });
  assert.is(got.exitCode, 0);
  assert.is(got.stdout, '4');
  await run(ctx, 'PutToConfigDatastore', ['notes/hello', 'hello world']);
  assert.is((await run(ctx, 'GetFromConfigDatastore', ['notes/hello'])).stdout, 'hello world');
  assert.is((await run(ctx, 'CheckConfigDatastore', ['notes/hello'])).exitCode, 0);
  assert.is((await run(ctx, 'CheckConfigDatastore', ['notes/absent'])).exitCode, 1);
  const absent = await run(ctx, 'GetFromConfigDatastore', ['notes/absent']);
  assert.is(absent.exitCode, 1);
  assert.is(absent.stdout, '');
  assert.match(absent.stderr, /not in the datastore/);
});

test('Put with no value makes an empty marker', async (ctx) => {
  assert.is((await run(ctx, 'PutToConfigDatastore', ['build/installed-successfully'])).exitCode, 0);
  assert.is(await ctx.store.exists(keys.installedSuccessfully), true);
  assert.is((await run(ctx, 'CheckConfigDatastore', ['build/installed-successfully'], { role: 'database' })).exitCode, 0);
});

test('List prints the last segment per line, like the original (and --full the keys)', async (ctx) => {
  await ctx.store.put(keys.webserverIps.key('198.18.1.5'));
  await ctx.store.put(keys.webserverIps.key('198.18.1.50'));
  const r = await run(ctx, 'ListFromConfigDatastore', ['webserverips/*']);
  assert.is(r.exitCode, 0);
  assert.equal(r.stdout.split('\n'), ['198.18.1.5', '198.18.1.50']);
  const full = await run(ctx, 'ListFromConfigDatastore', ['webserverips/', '--full']);
  assert.equal(full.stdout.split('\n'), ['webserverips/198.18.1.5', 'webserverips/198.18.1.50']);
  assert.is((await run(ctx, 'ListFromConfigDatastore', ['nothing/'])).stdout, '');
});

test('Delete removes a key or a prefix*', async (ctx) => {
  await ctx.store.put('tmp/a', 1);
  await ctx.store.put('tmp/b', 2);
  await ctx.store.put('tmpx', 3);
  assert.is((await run(ctx, 'DeleteFromConfigDatastore', ['tmp/a'])).exitCode, 0);
  assert.is(await ctx.store.exists('tmp/a'), false);
  const r = await run(ctx, 'DeleteFromConfigDatastore', ['tmp/*']);
  assert.is(r.exitCode, 0);
  assert.equal(await ctx.store.list('tmp'), ['tmpx']);
  assert.is((await run(ctx, 'DeleteFromConfigDatastore', ['*'])).exitCode, 2, 'deleting everything is refused');
});

test('secrets: written only from stdin, never printed by Get, GetDBCredential gives one field', async (ctx) => {
  const creds = JSON.stringify({ engine: 'mariadb', host: '198.18.1.20', port: 3306, name: 'wp', user: 'wpuser', password: 'pa55-W0rd-x' });
  const onCmdline = await run(ctx, 'PutToConfigDatastore', ['credentials/database', creds]);
  assert.is(onCmdline.exitCode, 2);
  assert.match(onCmdline.stderr, /stdin/);
  assert.is(await ctx.store.exists(keys.dbCredentials), false, 'nothing written');
  assert.is((await run(ctx, 'PutToConfigDatastore', ['credentials/database', '-'], { input: creds })).exitCode, 0);
  const raw = await ctx.store.driver.read('credentials/database');
  assert.not.ok(Buffer.from(raw!.body).toString('latin1').includes('pa55-W0rd-x'), 'encrypted at rest');
  const get = await run(ctx, 'GetFromConfigDatastore', ['credentials/database']);
  assert.is(get.exitCode, 2);
  assert.not.ok(get.stdout.includes('pa55') || get.stderr.includes('pa55'));
  for (const [field, expected] of [
    ['user', 'wpuser'],
    ['name', 'wp'],
    ['password', 'pa55-W0rd-x'],
    ['port', '3306'],
    ['host', '198.18.1.20'],
  ]) {
    const r = await run(ctx, 'GetDBCredential', [field!], { role: 'database' });
    assert.is(r.exitCode, 0, r.stderr);
    assert.is(r.stdout, expected);
  }
});

test('GetDBCredential without the deployment key fails clearly and prints nothing', async (ctx) => {
  const envFile = join(ctx.dir, 'nokey.env');
  await writeEnvFile(envFile, {
    ADT_S3_ENDPOINT: ctx.s3.endpoint,
    ADT_S3_ACCESS_KEY_ID: 'S3RVER',
    ADT_S3_SECRET_ACCESS_KEY: 'S3RVER',
    ADT_CONFIG_BUCKET: 'www-example-com-config-t1',
  });
  const r = await run(ctx, 'GetDBCredential', ['password'], { env: { ADT_DATASTORE_ENV: envFile } });
  assert.is(r.exitCode, 1);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /deployment key/);
});

test('bad arguments exit 2 with a usage message and change nothing', async (ctx) => {
  const before = await ctx.store.list('');
  const cases: [string, string[]][] = [
    ['PutToConfigDatastore', []],
    ['PutToConfigDatastore', ['a', 'b', 'c']],
    ['PutToConfigDatastore', ['/abs', '1']],
    ['PutToConfigDatastore', ['a/../b', '1']],
    ['GetFromConfigDatastore', []],
    ['CheckConfigDatastore', ['x', 'y']],
    ['ListFromConfigDatastore', ['a/', '--bogus']],
    ['GetDBCredential', ['colour']],
    ['DeleteFromConfigDatastore', []],
  ];
  for (const [cmd, args] of cases) {
    const r = await run(ctx, cmd, args);
    assert.is(r.exitCode, 2, `${cmd} ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage:|invalid key/, `${cmd} ${args.join(' ')}`);
  }
  assert.equal(await ctx.store.list(''), before);
});

test('missing or unsafe settings exit 2, naming each problem', async (ctx) => {
  const loose = join(ctx.dir, 'loose.env');
  await writeFile(loose, 'ADT_CONFIG_BUCKET=x\n', { mode: 0o644 });
  const r1 = await run(ctx, 'CheckConfigDatastore', ['a'], { env: { ADT_DATASTORE_ENV: loose } });
  assert.is(r1.exitCode, 2);
  assert.match(r1.stderr, /mode 0600/);
  const empty = join(ctx.dir, 'empty.env');
  await writeFile(empty, '', { mode: 0o600 });
  const r2 = await run(ctx, 'CheckConfigDatastore', ['a'], { env: { ADT_DATASTORE_ENV: empty } });
  assert.is(r2.exitCode, 2);
  for (const v of ['ADT_CONFIG_BUCKET', 'ADT_S3_ACCESS_KEY_ID', 'ADT_S3_SECRET_ACCESS_KEY']) assert.match(r2.stderr, new RegExp(v));
});

test('wrong credentials and a missing bucket are distinct failures (exit 1)', async (ctx) => {
  const wrong = join(ctx.dir, 'wrong.env');
  await writeEnvFile(wrong, {
    ADT_S3_ENDPOINT: ctx.s3.endpoint,
    ADT_S3_ACCESS_KEY_ID: 'NOPE',
    ADT_S3_SECRET_ACCESS_KEY: 'nope-secret',
    ADT_CONFIG_BUCKET: 'www-example-com-config-t1',
  });
  const r1 = await run(ctx, 'CheckConfigDatastore', ['a'], { env: { ADT_DATASTORE_ENV: wrong } });
  assert.is(r1.exitCode, 1);
  assert.match(r1.stderr, /refused the credentials/);
  assert.not.ok(r1.stderr.includes('nope-secret'));
  const r2 = await run(ctx, 'GetFromConfigDatastore', ['a'], { env: { ADT_CONFIG_BUCKET: 'no-such-bucket-here' } });
  assert.is(r2.exitCode, 1);
  assert.match(r2.stderr, /does not exist/);
});

test.run();
