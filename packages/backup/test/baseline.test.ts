/** Baselines and the secret scan, against a real MariaDB and the embedded S3 server. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { execaRunner, freePort } from '@adt/core';
import { quietAwsSdk, rejects, removeTempDir, tempDir, testS3Client } from '@adt/test-utils';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import * as maria from '@adt/database/engines/mariadb';
import { Backups, BASELINE_HOST, publishBaseline, rewriteDump, scanTree, SecretsFound } from '../src/index.ts';

quietAwsSdk();
const BUCKET = 'adt-baselines-test';
const DB_PASSWORD = 'Deployment-DB-Pa55word-7f3a';
const S3_SECRET = 'S3secretKEYvalue0123456789abcdefXYZ';

interface Ctx {
  dir: string;
  s3: EmbeddedS3;
  client: S3Client;
  db: maria.MariaDbOptions;
  webroot: string;
}

const test = suite<Ctx>('baselines and the secret scan');

async function sql(ctx: Ctx, statements: string) {
  return (await ctx.db.runner.run(maria.clientArgv(ctx.db), { input: statements })).stdout.trim();
}

test.before(async (ctx) => {
  ctx.dir = await tempDir('baseline', { mode: 0o755 });
  ctx.s3 = await startEmbeddedS3({ directory: join(ctx.dir, 's3') });
  ctx.client = testS3Client({ endpoint: ctx.s3.endpoint, credentials: ctx.s3.credentials });
  await ctx.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  ctx.db = {
    dataDir: join(ctx.dir, 'mysql'),
    runDir: join(ctx.dir, 'run'),
    configFile: join(ctx.dir, 'my.cnf'),
    logFile: join(ctx.dir, 'mysql.log'),
    bindAddress: '127.0.0.1',
    port: await freePort(),
    runner: execaRunner({ timeoutMs: 120_000 }),
  };
  await maria.initialise(ctx.db);
  await maria.start(ctx.db);
  await sql(
    ctx,
    [
      'CREATE DATABASE site;',
      'CREATE TABLE site.wp_posts (ID INT PRIMARY KEY, post_title TEXT);',
      "INSERT INTO site.wp_posts VALUES (1, 'Hello world'), (2, 'About us');",
      'CREATE TABLE site.wp_users (ID INT PRIMARY KEY, user_login VARCHAR(60), user_pass VARCHAR(255));',
      "INSERT INTO site.wp_users VALUES (1, 'admin', '$P$BZlPX7NIx8MYpXokBW2AGsN7i.aUOt0');",
    ].join('\n'),
  );
  ctx.webroot = join(ctx.dir, 'www');
  const f = (p: string, text: string) =>
    mkdir(join(ctx.webroot, p, '..'), { recursive: true }).then(() => writeFile(join(ctx.webroot, p), text));
  await f('index.php', '<?php\n$password = wp_generate_password( 12, false );\n// the word password in code is not a secret\n');
  await f('wp-config.php', `<?php\ndefine('DB_PASSWORD', '${DB_PASSWORD}');\n`); // excluded by design: never scanned, never shipped
  // Five planted secrets, in five different places:
  await f('wp-content/plugins/shop/.env', `APP_NAME=shop\nSMTP_PASSWORD=${'smtp-secret-value'}\n`);
  await f(
    'wp-content/plugins/deploy/keys/id_ed25519',
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
  );
  await f('wp-content/uploads/notes.txt', `old notes\nthe db password is ${DB_PASSWORD}\n`);
  await f('wp-content/plugins/mailer/config.json', '{\n  "host": "smtp.example.com",\n  "api_key": "9f8e7d6c5b4a39281706"\n}\n');
  await f('wp-content/mu-plugins/s3.php', `<?php\n$key = 'AKIAIOSFODNN7EXAMPLE';\n$secret = '${S3_SECRET}';\n`);
});

test.after(async (ctx) => {
  ctx.client?.destroy();
  await maria.stop(ctx.db).catch(() => {});
  await ctx.s3?.stop();
  await removeTempDir(ctx.dir);
});

test("a clean WordPress tree (Debian's package) has no findings", async () => {
  assert.equal(await scanTree('/usr/share/wordpress'), []);
});

test('planted secrets are all named, by file, line and rule, and nothing is published', async (ctx) => {
  const published = publishBaseline({
    client: ctx.client,
    bucket: BUCKET,
    hostname: 'ws-1',
    name: 'shop',
    app: 'wordpress',
    webroot: { dir: ctx.webroot },
    database: { kind: 'database', engine: 'mariadb', defaultsFile: ctx.db.configFile, database: 'site' },
    knownSecrets: [DB_PASSWORD, S3_SECRET],
  });
  const e = await rejects<SecretsFound>(published, { exitCode: 2 });
  assert.instance(e, SecretsFound);
  const where = e.findings.map((f) => `${f.file}:${f.line}:${f.rule}`);
  for (const expected of [
    'wp-content/plugins/shop/.env:2:config-assignment',
    'wp-content/plugins/deploy/keys/id_ed25519:1:private-key',
    'wp-content/uploads/notes.txt:2:known-secret',
    'wp-content/plugins/mailer/config.json:3:config-assignment',
    'wp-content/mu-plugins/s3.php:2:cloud-access-key',
    'wp-content/mu-plugins/s3.php:3:known-secret',
  ]) {
    assert.ok(where.includes(expected), `${expected} in ${where.join(' ')}`);
  }
  assert.ok(
    e.findings.some((f) => f.file === 'database.sql' && f.rule === 'password-hash'),
    'the password hash in wp_users',
  );
  assert.not.ok(
    where.some((w) => w.startsWith('wp-config.php')),
    'the excluded config file is not scanned',
  );
  for (const secret of [DB_PASSWORD, S3_SECRET, 'smtp-secret-value', '9f8e7d6c5b4a39281706', 'AKIAIOSFODNN7EXAMPLE', '$P$B']) {
    assert.not.ok(e.message.includes(secret), `the message must not contain ${secret}`);
  }
  const listed = await ctx.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'baselines/' }));
  assert.is(listed.KeyCount ?? 0, 0, 'nothing was uploaded');
});

test('a password hash only in the database is caught while streaming, and the upload is removed', async (ctx) => {
  const clean = join(ctx.dir, 'clean-www');
  await mkdir(clean);
  await writeFile(join(clean, 'index.php'), '<?php echo 1;\n');
  const published = publishBaseline({
    client: ctx.client,
    bucket: BUCKET,
    hostname: 'ws-1',
    name: 'shop',
    app: 'wordpress',
    webroot: { dir: clean },
    database: { kind: 'database', engine: 'mariadb', defaultsFile: ctx.db.configFile, database: 'site' },
  });
  const e = await rejects<SecretsFound>(published);
  assert.instance(e, SecretsFound);
  assert.equal(
    e.findings.map((f) => f.rule),
    ['password-hash'],
  );
  const listed = await ctx.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'baselines/' }));
  assert.is(listed.KeyCount ?? 0, 0, 'the partial upload was removed');
});

test("with the rewrite, the site's domain and password hashes leave the dump; a deploy puts its own domain back", async (ctx) => {
  const clean = join(ctx.dir, 'clean-www-2');
  await mkdir(clean);
  await writeFile(join(clean, 'index.php'), '<?php echo 1;\n');
  await sql(
    ctx,
    'CREATE TABLE site.wp_options (name VARCHAR(64) PRIMARY KEY, value TEXT); ' +
      "INSERT INTO site.wp_options VALUES ('siteurl', 'https://www.shop.example'), " +
      '(\'widget\', \'a:1:{s:4:\\"link\\";s:26:\\"https://www.shop.example/x\\";}\');',
  );
  const stats = { domains: 0, serialisedFixed: 0, hashes: 0 };
  const m = await publishBaseline({
    client: ctx.client,
    bucket: BUCKET,
    hostname: 'db-1',
    name: 'shop-db',
    app: 'wordpress',
    database: { kind: 'database', engine: 'mariadb', defaultsFile: ctx.db.configFile, database: 'site' },
    rewrite: { domains: [{ from: 'www.shop.example', to: BASELINE_HOST }], scrubPasswordHashes: true },
    rewriteStats: stats,
  });
  assert.equal(
    m.parts.map((p) => p.kind),
    ['database'],
    'the database part alone (the files are on a webserver)',
  );
  assert.equal(stats, { domains: 2, serialisedFixed: 1, hashes: 1 });
  const consumer = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'db-2', prefix: 'baselines/shop-db/' });
  await sql(ctx, 'CREATE DATABASE other;');
  await consumer.restore(
    await consumer.find({ period: 'manual' }),
    { database: { defaultsFile: ctx.db.configFile, database: 'other' } },
    { transform: { database: () => rewriteDump({ domains: [{ from: BASELINE_HOST, to: 'blog.other.example' }] }) } },
  );
  assert.is(await sql(ctx, "SELECT value FROM other.wp_options WHERE name = 'siteurl';"), 'https://blog.other.example');
  assert.is(
    await sql(ctx, "SELECT value FROM other.wp_options WHERE name = 'widget';"),
    'a:1:{s:4:"link";s:28:"https://blog.other.example/x";}',
  );
  assert.is(await sql(ctx, 'SELECT user_pass FROM other.wp_users;'), '', 'no password hash came along');
  await sql(ctx, 'DROP TABLE site.wp_options;');
});

test("with dereference, the shared files behind a link are scanned and archived as the site's own", async (ctx) => {
  const site = join(ctx.dir, 'release-code');
  const shared = join(ctx.dir, 'shared-uploads');
  await mkdir(join(site, 'wp-content'), { recursive: true });
  await mkdir(join(shared, '2026/12'), { recursive: true });
  await writeFile(join(site, 'index.php'), '<?php echo 1;\n');
  await writeFile(join(shared, '2026/12/photo.txt'), 'a photo\n');
  await symlink(shared, join(site, 'wp-content/uploads'));
  await writeFile(join(shared, '2026/12/leak.txt'), `db ${DB_PASSWORD}\n`);
  const options = {
    client: ctx.client,
    bucket: BUCKET,
    hostname: 'ws-1',
    name: 'linked',
    app: 'wordpress' as const,
    webroot: { dir: site, dereference: true },
    knownSecrets: [DB_PASSWORD],
  };
  const e = await rejects<SecretsFound>(publishBaseline(options));
  assert.equal(
    e.findings.map((f) => `${f.file}:${f.rule}`),
    ['wp-content/uploads/2026/12/leak.txt:known-secret'],
    'found behind the link, named by its path in the site',
  );
  await rm(join(shared, '2026/12/leak.txt'));
  const m = await publishBaseline(options);
  const back = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'ws-2', prefix: 'baselines/linked/' });
  const out = join(ctx.dir, 'linked-restored');
  await back.restore(m, { webroot: { dir: out } });
  assert.is(await readFile(join(out, 'wp-content/uploads/2026/12/photo.txt'), 'utf8'), 'a photo\n', 'the shared file, as a file');
});

test('a clean baseline is published without the config file, and restores', async (ctx) => {
  for (const p of [
    'wp-content/plugins/shop',
    'wp-content/plugins/deploy',
    'wp-content/uploads/notes.txt',
    'wp-content/plugins/mailer',
    'wp-content/mu-plugins',
  ])
    await rm(join(ctx.webroot, p), { recursive: true });
  await sql(ctx, "UPDATE site.wp_users SET user_pass = '';");
  const m = await publishBaseline({
    client: ctx.client,
    bucket: BUCKET,
    hostname: 'ws-1',
    name: 'shop',
    app: 'wordpress',
    webroot: { dir: ctx.webroot },
    database: { kind: 'database', engine: 'mariadb', defaultsFile: ctx.db.configFile, database: 'site' },
    knownSecrets: [DB_PASSWORD, S3_SECRET],
  });
  assert.is(m.period, 'manual');
  const consumer = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'ws-2', prefix: 'baselines/shop/' });
  const target = join(ctx.dir, 'from-baseline');
  await sql(ctx, 'CREATE DATABASE fresh;');
  await consumer.restore(await consumer.find({ period: 'manual' }), {
    webroot: { dir: target },
    database: { defaultsFile: ctx.db.configFile, database: 'fresh' },
  });
  const files = await readdir(target, { recursive: true });
  assert.ok(files.includes('index.php'));
  assert.not.ok(files.includes('wp-config.php'), 'the config file with credentials is not in the baseline');
  assert.is(await sql(ctx, 'SELECT post_title FROM fresh.wp_posts ORDER BY ID;'), 'Hello world\nAbout us');
});

test('bad names are refused with exit code 2', async (ctx) => {
  await rejects(
    publishBaseline({
      client: ctx.client,
      bucket: BUCKET,
      hostname: 'x',
      name: 'Bad Name',
      app: 'wordpress',
      webroot: { dir: ctx.webroot },
    }),
    { exitCode: 2 },
  );
});

test.run();
