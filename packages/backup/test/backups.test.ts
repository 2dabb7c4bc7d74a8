/** Temporal backups against real parts: a MariaDB server, the embedded S3 server, real tar and gzip. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, symlink, writeFile, readlink } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { join, relative } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { execaRunner, freePort } from '@adt/core';
import { quietAwsSdk, rejects, removeTempDir, tempDir, testS3Client } from '@adt/test-utils';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import * as maria from '@adt/database/engines/mariadb';
import { Backups, type Source } from '../src/index.ts';

quietAwsSdk();
const BUCKET = 'adt-backups-test';
const MiB = 1024 * 1024;

interface Ctx {
  dir: string;
  s3: EmbeddedS3;
  client: S3Client;
  db: maria.MariaDbOptions;
  webroot: string;
  sources: Source[];
}

/** path -> sha256 (files), 'link:' + target (symlinks), for every entry under dir. */
async function treeDigest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    const rel = relative(dir, full);
    if (entry.isSymbolicLink()) out[rel] = `link:${await readlink(full)}`;
    else if (entry.isFile())
      out[rel] = createHash('sha256')
        .update(await readFile(full))
        .digest('hex');
    else if (entry.isDirectory()) out[`${rel}/`] = 'dir';
  }
  return out;
}

async function sql(ctx: Ctx, statements: string): Promise<string> {
  return (await ctx.db.runner.run(maria.clientArgv(ctx.db), { input: statements })).stdout.trim();
}

const test = suite<Ctx>('temporal backups (MariaDB + embedded S3)');

test.before(async (ctx) => {
  ctx.dir = await tempDir('backup', { mode: 0o755 });
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
      'CREATE DATABASE app;',
      'CREATE TABLE app.posts (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200), body MEDIUMTEXT, data BLOB) ENGINE=InnoDB;',
      ...Array.from({ length: 50 }, (_, i) => {
        const hex = i.toString(16).padStart(2, '0');
        return `INSERT INTO app.posts (title, body, data) VALUES ('Post ${i} it''s', REPEAT('text ${i} ', 200), UNHEX('00FF${hex}'));`;
      }),
      'CREATE TABLE app.options (name VARCHAR(64) PRIMARY KEY, value TEXT);',
      "INSERT INTO app.options VALUES ('siteurl', 'https://www.adt.test'), ('blogname', 'ADT');",
    ].join('\n'),
  );
  ctx.webroot = join(ctx.dir, 'www');
  await mkdir(join(ctx.webroot, 'wp-content/uploads/2026/11'), { recursive: true });
  await writeFile(join(ctx.webroot, 'index.php'), '<?php echo "hello";\n');
  await writeFile(join(ctx.webroot, '.htaccess'), 'Options -Indexes\n');
  await writeFile(join(ctx.webroot, 'wp-content/uploads/2026/11/photo.jpg'), randomBytes(3 * MiB + 17));
  await writeFile(join(ctx.webroot, "wp-content/uploads/2026/11/name with spaces & quotes'.txt"), 'odd name\n');
  await symlink('index.php', join(ctx.webroot, 'link-to-index.php'));
  ctx.sources = [
    { kind: 'webroot', dir: ctx.webroot },
    { kind: 'database', engine: 'mariadb', defaultsFile: ctx.db.configFile, database: 'app' },
  ];
});

test.after(async (ctx) => {
  ctx.client?.destroy();
  await maria.stop(ctx.db).catch(() => {});
  await ctx.s3?.stop();
  await removeTempDir(ctx.dir);
});

test('a backup is streamed, verified and manifested; the restore gives back the same files and rows', async (ctx) => {
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'ws-1', partSize: 5 * MiB });
  const beforeFiles = await treeDigest(ctx.webroot);
  const beforeRows = await sql(ctx, 'CHECKSUM TABLE app.posts, app.options;');
  const m = await backups.create('daily', ctx.sources, { app: 'wordpress' });
  assert.is(m.parts.length, 2);
  assert.equal(
    m.parts.map((p) => p.kind),
    ['webroot', 'database'],
  );
  assert.ok(m.parts.every((p) => /^[0-9a-f]{64}$/.test(p.sha256) && p.size > 0 && p.rawSize > 0));
  assert.is(m.encrypted, false);
  assert.is((await backups.list('daily'))[0]?.id, m.id);

  // Disaster: both gone.
  await rm(ctx.webroot, { recursive: true, force: true });
  await sql(ctx, 'DROP DATABASE app; CREATE DATABASE app;');
  await backups.restore(await backups.find({ period: 'daily' }), {
    webroot: { dir: ctx.webroot },
    database: { defaultsFile: ctx.db.configFile, database: 'app' },
  });
  assert.equal(await treeDigest(ctx.webroot), beforeFiles);
  assert.is(await sql(ctx, 'CHECKSUM TABLE app.posts, app.options;'), beforeRows);
  assert.is(await sql(ctx, 'SELECT title FROM app.posts WHERE id = 1;'), "Post 0 it's");
});

test('a webroot that is a mount point (it cannot be renamed) is restored in place, the same files', async (ctx) => {
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'ws-1' });
  const m = await backups.create('manual', [ctx.sources[0]!]);
  const target = join(ctx.dir, 'mounted-webroot');
  await mkdir(target, { recursive: true });
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', target]);
  try {
    await writeFile(join(target, 'stale.txt'), 'from before the restore');
    await backups.restore(m, { webroot: { dir: target } });
    assert.equal(await treeDigest(target), await treeDigest(ctx.webroot));
    assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${target} `), 'still the mount point');
  } finally {
    await execa('umount', [target]);
  }
});

test('encrypted backups hold no readable content and restore only with the key', async (ctx) => {
  const key = randomBytes(32);
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'db-1', encryptionKey: key, prefix: 'enc/' });
  const m = await backups.create('weekly', [ctx.sources[1]!]);
  assert.is(m.encrypted, true);
  const stored = Buffer.from(
    await (await ctx.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: m.parts[0]!.key }))).Body!.transformToByteArray(),
  );
  assert.ok(stored.subarray(0, 7).toString() === 'ADTBK1\n');
  const target = { defaultsFile: ctx.db.configFile, database: 'restored_enc' };
  await sql(ctx, 'CREATE DATABASE restored_enc;');
  const noKey = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'x', prefix: 'enc/' });
  await rejects(noKey.restore(m, { database: target }), 'NO_KEY');
  const wrongKey = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'x', prefix: 'enc/', encryptionKey: randomBytes(32) });
  await rejects(wrongKey.restore(m, { database: target }), /decrypt|wrong backup key/);
  assert.is(
    await sql(ctx, 'SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "restored_enc";'),
    '0',
    'nothing loaded with a wrong key',
  );
  await backups.restore(m, { database: target });
  assert.is(await sql(ctx, 'SELECT COUNT(*) FROM restored_enc.posts;'), '50');
});

test('a dump that fails leaves no backup and the previous one intact', async (ctx) => {
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'db-1', prefix: 'fail/' });
  const good = await backups.create('hourly', [ctx.sources[1]!]);
  await rejects(
    backups.create('hourly', [{ kind: 'database', engine: 'mariadb', defaultsFile: ctx.db.configFile, database: 'no_such_db' }]),
    { code: 'SOURCE_FAILED', message: /no_such_db|Unknown database/ },
  );
  assert.equal(
    (await backups.list('hourly')).map((m) => m.id),
    [good.id],
  );
  const keys =
    (await ctx.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'fail/hourly/' }))).Contents?.map((o) => o.Key) ?? [];
  assert.ok(
    keys.every((k) => k!.startsWith(`fail/hourly/${good.id}/`)),
    `leftovers: ${keys.join(', ')}`,
  );
});

/** A real HTTP proxy in front of the S3 server that starts answering 500 after `okRequests` requests. */
async function failingAfter(upstream: string, okRequests: number): Promise<{ url: string; close(): Promise<void>; heal(): void }> {
  const up = new URL(upstream);
  let count = 0;
  let healed = false;
  const server: Server = createServer((req, res) => {
    count++;
    if (!healed && count > okRequests) {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
      return;
    }
    const p = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(p);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    heal: () => (healed = true),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

test('an upload that fails midway is not listed, and the previous backup stays restorable', async (ctx) => {
  const prefix = 'midway/';
  const direct = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'ws-1', prefix, partSize: 5 * MiB });
  const good = await direct.create('daily', [ctx.sources[0]!]);
  // Enough data for several multipart parts; the proxy lets the first requests through, then fails.
  await writeFile(join(ctx.webroot, 'big.bin'), randomBytes(14 * MiB));
  const proxy = await failingAfter(ctx.s3.endpoint, 2);
  const flaky = testS3Client({ endpoint: proxy.url, credentials: ctx.s3.credentials, maxAttempts: 2 });
  try {
    const viaProxy = new Backups({ client: flaky, bucket: BUCKET, hostname: 'ws-1', prefix, partSize: 5 * MiB });
    await rejects(viaProxy.create('daily', [ctx.sources[0]!]), undefined, 'the backup fails');
  } finally {
    flaky.destroy();
    await proxy.close();
    await rm(join(ctx.webroot, 'big.bin'));
  }
  assert.equal(
    (await direct.list('daily')).map((m) => m.id),
    [good.id],
    'the broken backup is not listed',
  );
  const restoreDir = join(ctx.dir, 'restored-midway');
  await direct.restore(good, { webroot: { dir: restoreDir } });
  assert.equal(await treeDigest(restoreDir), await treeDigest(ctx.webroot));
});

test('rotation keeps exactly N complete generations, newest first, and only after a verified backup', async (ctx) => {
  let clock = Date.parse('2026-11-20T00:00:00Z');
  const backups = new Backups({
    client: ctx.client,
    bucket: BUCKET,
    hostname: 'db-1',
    prefix: 'rot/',
    now: () => new Date((clock += 3600_000)),
  });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) ids.push((await backups.backupAndRotate('hourly', [ctx.sources[1]!], 2)).manifest.id);
  assert.equal(
    (await backups.list('hourly')).map((m) => m.id),
    [ids[3], ids[2]],
  );
  // A failing backup does not rotate anything away.
  await backups
    .backupAndRotate('hourly', [{ kind: 'database', engine: 'mariadb', defaultsFile: ctx.db.configFile, database: 'no_such_db' }], 1)
    .catch(() => {});
  assert.equal(
    (await backups.list('hourly')).map((m) => m.id),
    [ids[3], ids[2]],
  );
  await backups.rotate('hourly', 1).catch(() => {});
  assert.equal(
    (await backups.list('hourly')).map((m) => m.id),
    [ids[3]],
  );
  await rejects(backups.rotate('hourly', 0), 'BAD_OPTION');
});

test('a tampered archive is refused at restore and the target is left as it was', async (ctx) => {
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'ws-1', prefix: 'tamper/' });
  const m = await backups.create('monthly', [ctx.sources[0]!]);
  const part = m.parts[0]!;
  const bytes = Buffer.from(
    await (await ctx.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: part.key }))).Body!.transformToByteArray(),
  );
  bytes[bytes.length - 20]! ^= 0xff;
  await ctx.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: part.key, Body: bytes }));
  const target = join(ctx.dir, 'tamper-target');
  await mkdir(target);
  await writeFile(join(target, 'keep.txt'), 'existing site');
  await rejects(backups.restore(m, { webroot: { dir: target } }), undefined, 'restore refused');
  assert.is(await readFile(join(target, 'keep.txt'), 'utf8'), 'existing site');
  assert.equal(
    (await readdir(ctx.dir)).filter((n) => n.includes('.adt-restore-')),
    [],
    'no staging left behind',
  );
});

test('bad input is refused with exit code 2', async (ctx) => {
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'x' });
  for (const p of [backups.create('yearly' as never, ctx.sources), backups.create('daily', []), backups.find({ id: 'nope' })]) {
    await rejects(p, { exitCode: 2 });
  }
  assert.throws(() => new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'x', partSize: MiB }), /5 MiB/);
  assert.throws(() => new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'x', encryptionKey: randomBytes(16) }), /32 bytes/);
  void stat;
});

test.run();
