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
import { existsSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import * as maria from '@adt/database/engines/mariadb';
import { Backups, type Manifest, type Source } from '../src/index.ts';

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

/**
 * A backup as someone who can write the bucket makes it: any bytes, with a manifest whose sizes and
 * checksums match them (until manifests are authenticated, nothing else tells them apart).
 */
async function plantBackup(ctx: Ctx, prefix: string, kind: 'webroot' | 'database', body: Buffer): Promise<Manifest> {
  const id = `20261202T120000Z-${randomBytes(3).toString('hex')}`;
  const key = `${prefix}manual/${id}/${kind === 'webroot' ? 'webroot.tar.gz' : 'database.sql.gz'}`;
  const stored = kind === 'webroot' ? body : gzipSync(body);
  await ctx.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: stored }));
  const sha256 = createHash('sha256').update(stored).digest('hex');
  const manifest: Manifest = {
    format: 1,
    id,
    period: 'manual',
    createdAt: new Date().toISOString(),
    sourceHost: 'attacker',
    encrypted: false,
    parts: [{ kind, key, size: stored.length, sha256, rawSize: body.length }],
    verifiedAt: new Date().toISOString(),
  };
  await ctx.client.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}manual/${id}/manifest.json`, Body: JSON.stringify(manifest) }),
  );
  return manifest;
}

/** A gzipped tar of a tree that `build` makes in a scratch directory (real tar, as root: devices included). */
async function craftedArchive(ctx: Ctx, build: (dir: string) => Promise<void>): Promise<Buffer> {
  const dir = join(ctx.dir, `craft-${randomBytes(3).toString('hex')}`);
  await mkdir(dir);
  await writeFile(join(dir, 'index.php'), '<?php echo "planted";\n');
  await build(dir);
  const r = await execa('tar', ['--create', '--gzip', '--file', '-', '--directory', dir, '--numeric-owner', '.'], { encoding: 'buffer' });
  await rm(dir, { recursive: true, force: true });
  return Buffer.from(r.stdout);
}

test('a hostile archive is refused before anything is replaced: links out, devices, FIFOs, sockets, names with ..', async (ctx) => {
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'ws-1', prefix: 'hostile/' });
  const outside = join(ctx.dir, 'outside');
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'secret.php'), 'DB_PASSWORD');
  const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
    ['an absolute link', (d) => symlink(join(outside, 'secret.php'), join(d, 'config.php')), /link to an absolute path/],
    ['a relative link out', (d) => symlink('../outside/secret.php', join(d, 'config.php')), /link to nothing|out of the restored tree/],
    [
      'a link out through another link',
      async (d) => {
        await mkdir(join(d, 'sub'));
        await symlink('..', join(d, 'sub', 'up'));
        await symlink('sub/up/..', join(d, 'escape'));
      },
      /out of the restored tree/,
    ],
    ['a device file', (d) => execa('mknod', [join(d, 'mem'), 'c', '1', '1']).then(() => {}), /device file/],
    ['a FIFO', (d) => execa('mkfifo', [join(d, 'pipe')]).then(() => {}), /FIFO/],
  ];
  const target = join(ctx.dir, 'hostile-target');
  await mkdir(target, { recursive: true });
  await writeFile(join(target, 'keep.txt'), 'existing site');
  for (const [what, build, message] of cases) {
    const m = await plantBackup(ctx, 'hostile/', 'webroot', await craftedArchive(ctx, build));
    const e = await rejects(backups.restore(m, { webroot: { dir: target } }), 'RESTORE_REFUSED', what);
    assert.match(e.message, message, what);
    assert.equal(await readdir(target), ['keep.txt'], `${what}: the target is as it was`);
  }
  // Names with .. (made by Python's tarfile: GNU tar does not write them) are refused by tar itself.
  const py = await execa(
    'python3',
    [
      '-c',
      'import tarfile,io,sys\n' +
        't=tarfile.open(fileobj=sys.stdout.buffer,mode="w:gz")\n' +
        'i=tarfile.TarInfo("../escaped.txt");i.size=2;t.addfile(i,io.BytesIO(b"no"))\nt.close()',
    ],
    { encoding: 'buffer' },
  );
  const dotdot = await plantBackup(ctx, 'hostile/', 'webroot', Buffer.from(py.stdout));
  await rejects(backups.restore(dotdot, { webroot: { dir: target } }), 'RESTORE_FAILED', 'a name with ..');
  assert.not.ok(existsSync(join(ctx.dir, 'escaped.txt')), 'nothing written beside the target');
  assert.equal(await readdir(target), ['keep.txt']);
  assert.equal(
    (await readdir(ctx.dir)).filter((n) => n.includes('.adt-restore-')),
    [],
    'no staging left behind',
  );
});

test('a restored tree keeps no owner, setuid or setgid bit of the archive; links inside it stay', async (ctx) => {
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'ws-1', prefix: 'owners/' });
  const archive = await craftedArchive(ctx, async (d) => {
    await writeFile(join(d, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
    await execa('chown', ['4321:4321', join(d, 'tool')]);
    await execa('chmod', ['6755', join(d, 'tool')]);
    await mkdir(join(d, 'wp-content'));
    await symlink('../index.php', join(d, 'wp-content', 'index.php'));
  });
  const m = await plantBackup(ctx, 'owners/', 'webroot', archive);
  const target = join(ctx.dir, 'owners-target');
  await backups.restore(m, { webroot: { dir: target } });
  const st = await stat(join(target, 'tool'));
  assert.is(st.uid, 0, 'owned by the restoring user, not 4321');
  assert.is(st.mode & 0o7777, 0o755, 'setuid and setgid cleared');
  assert.is(await readlink(join(target, 'wp-content', 'index.php')), '../index.php');
  await rm(target, { recursive: true, force: true });
});

test('a hostile dump cannot run a shell or read files: the client is sandboxed', async (ctx) => {
  const backups = new Backups({ client: ctx.client, bucket: BUCKET, hostname: 'db-1', prefix: 'dump/' });
  const marker = join(ctx.dir, 'shell-ran');
  await sql(ctx, 'CREATE DATABASE IF NOT EXISTS sandboxed;');
  for (const line of [
    `\\! touch ${marker}`,
    `system touch ${marker}`,
    `\\. /etc/hostname`,
    `LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE t;`,
  ]) {
    const dump = `CREATE TABLE t (line TEXT);\n${line}\nINSERT INTO t VALUES ('after');\n-- Dump completed on 2026-12-02 12:00:00\n`;
    const m = await plantBackup(ctx, 'dump/', 'database', Buffer.from(dump));
    await rejects(backups.restore(m, { database: { defaultsFile: ctx.db.configFile, database: 'sandboxed' } }), 'RESTORE_FAILED', line);
    assert.not.ok(existsSync(marker), `${line}: no shell ran`);
    assert.is(await sql(ctx, "SELECT COUNT(*) FROM sandboxed.t WHERE line <> 'after';"), '0', `${line}: nothing read`);
    await sql(ctx, 'DROP TABLE sandboxed.t;');
  }
  // The server side: SQL's file statements in a dump, run with the database root's rights, are refused.
  const open = join(ctx.dir, 'world-writable');
  await mkdir(open, { mode: 0o1777 });
  await execa('chmod', ['1777', open]);
  const outfile = join(open, 'written-by-sql.php');
  for (const statement of [`SELECT 'x' INTO OUTFILE '${outfile}';`, "SELECT LOAD_FILE('/etc/hostname') IS NULL;"]) {
    const r = await ctx.db.runner.run(maria.clientArgv(ctx.db), { input: statement, nothrow: true });
    assert.ok(r.exitCode !== 0 || r.stdout.trim() === '1', `${statement}: refused (${r.stdout.trim()} ${r.stderr.trim()})`);
  }
  assert.not.ok(existsSync(outfile), 'no file written by SQL');
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
