/**
 * Backup and restore throughput: our Backups (streamed: tar/mariadb-dump -> gzip -> multipart upload,
 * then read-back verification) against the original's way (tar or mariadb-dump to a file, gzip, one
 * `s3cmd put`; restore by `s3cmd get` then `tar -x` / `mariadb <`), on the same embedded S3 server in
 * the same run. Ours includes its verification pass; the original's way has none, so the comparison
 * is conservative for us.
 *
 * Run: npm run bench -w @adt/backup            (1 GiB webroot, 1,000,000 rows)
 *      npx tsx packages/backup/bench/throughput.ts --webroot-mib 256 --rows 200000 [--json]
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { execaRunner, freePort } from '@adt/core';
import { quietAwsSdk, removeTempDir, tempDir, testS3Client, writeS3cmdConfig } from '@adt/test-utils';
import { startEmbeddedS3 } from '@adt/localcloud/services/s3';
import * as maria from '@adt/database/engines/mariadb';
import { Backups } from '../src/index.ts';

quietAwsSdk();
const { values } = parseArgs({
  options: { 'webroot-mib': { type: 'string', default: '1024' }, rows: { type: 'string', default: '1000000' }, json: { type: 'boolean' } },
});
const webrootMiB = Number(values['webroot-mib']);
const rows = Number(values.rows);
const MiB = 1024 * 1024;

const dir = await tempDir('bench-backup', { mode: 0o755 });
const s3 = await startEmbeddedS3({ directory: join(dir, 's3') });
const client = testS3Client({ endpoint: s3.endpoint, credentials: s3.credentials });
const db: maria.MariaDbOptions = {
  dataDir: join(dir, 'mysql'),
  runDir: join(dir, 'run'),
  configFile: join(dir, 'my.cnf'),
  logFile: join(dir, 'mysql.log'),
  bindAddress: '127.0.0.1',
  port: await freePort(),
  runner: execaRunner({ timeoutMs: 1_800_000 }),
};

const time = async (fn: () => Promise<unknown>) => {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
};

try {
  await client.send(new CreateBucketCommand({ Bucket: 'adt-bench' }));
  // A webroot of text-like files (gzip has real work) and a database of `rows` rows.
  const www = join(dir, 'www');
  await mkdir(www, { recursive: true });
  const words = randomBytes(4096).toString('base64');
  const files = Math.max(1, Math.round(webrootMiB / 32));
  for (let f = 0; f < files; f++) {
    const fh = await open(join(www, `file-${f}.txt`), 'w');
    let line = 0;
    for (let written = 0; written < (webrootMiB * MiB) / files;) {
      const parts: string[] = [];
      for (let i = 0; i < 2048; i++, line++) parts.push(`${f}:${line} ${words.slice((line * 7) % 4000, ((line * 7) % 4000) + 60)}\n`);
      const c = Buffer.from(parts.join(''));
      await fh.write(c);
      written += c.length;
    }
    await fh.close();
  }
  await maria.initialise(db);
  await maria.start(db);
  const sql = (s: string) => db.runner.run(maria.clientArgv(db), { input: s });
  await sql(
    [
      'CREATE DATABASE app;',
      'CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(100), body TEXT) ENGINE=InnoDB;',
      "INSERT INTO app.t (title, body) VALUES ('seed', REPEAT('lorem ipsum ', 10));",
    ].join(' '),
  );
  while (Number((await sql('SELECT COUNT(*) FROM app.t;')).stdout.trim()) < rows) {
    await sql(`INSERT INTO app.t (title, body) SELECT CONCAT('post ', id), body FROM app.t LIMIT ${rows};`);
  }
  await sql(`DELETE FROM app.t WHERE id > (SELECT id FROM (SELECT id FROM app.t ORDER BY id LIMIT 1 OFFSET ${rows - 1}) x);`);

  const cfg = join(dir, 's3cfg');
  await writeS3cmdConfig(cfg, s3);
  const s3cmd = (...a: string[]) => execa('s3cmd', ['-c', cfg, '--no-progress', '-q', ...a], { timeout: 1_800_000 });
  const backups = new Backups({ client, bucket: 'adt-bench', hostname: 'bench' });
  const dbSource = { kind: 'database' as const, engine: 'mariadb' as const, defaultsFile: db.configFile, database: 'app' };

  const results: { what: string; rawMiB: number; ours: number; original: number }[] = [];

  // Webroot
  let webManifest: Awaited<ReturnType<Backups['create']>> | undefined;
  const oursWeb = await time(async () => (webManifest = await backups.create('manual', [{ kind: 'webroot', dir: www }])));
  const origWeb = await time(async () => {
    await execa('tar', ['czf', join(dir, 'web.tar.gz'), '-C', www, '.']);
    await s3cmd('put', join(dir, 'web.tar.gz'), 's3://adt-bench/orig/web.tar.gz');
  });
  const rawWeb = webManifest!.parts[0]!.rawSize / MiB;
  results.push({ what: `webroot backup (${rawWeb.toFixed(0)} MiB)`, rawMiB: rawWeb, ours: oursWeb, original: origWeb });
  const oursWebRestore = await time(() => backups.restore(webManifest!, { webroot: { dir: join(dir, 'restored-ours') } }));
  const origWebRestore = await time(async () => {
    await s3cmd('get', '--force', 's3://adt-bench/orig/web.tar.gz', join(dir, 'web-got.tar.gz'));
    await mkdir(join(dir, 'restored-orig'));
    await execa('tar', ['xzf', join(dir, 'web-got.tar.gz'), '-C', join(dir, 'restored-orig')]);
  });
  results.push({ what: `webroot restore (${rawWeb.toFixed(0)} MiB)`, rawMiB: rawWeb, ours: oursWebRestore, original: origWebRestore });
  await rm(join(dir, 'restored-ours'), { recursive: true });
  await rm(join(dir, 'restored-orig'), { recursive: true });

  // Database
  let dbManifest: Awaited<ReturnType<Backups['create']>> | undefined;
  const oursDb = await time(async () => (dbManifest = await backups.create('manual', [dbSource])));
  const origDb = await time(async () => {
    const dump = join(dir, 'db.sql');
    await execa('mariadb-dump', [`--defaults-file=${db.configFile}`, '--single-transaction', '--quick', 'app'], {
      stdout: { file: dump },
      buffer: false,
    });
    await execa('tar', ['czf', join(dir, 'db.tar.gz'), '-C', dir, 'db.sql']);
    await s3cmd('put', join(dir, 'db.tar.gz'), 's3://adt-bench/orig/db.tar.gz');
  });
  const rawDb = dbManifest!.parts[0]!.rawSize / MiB;
  results.push({
    what: `database backup (${rows.toLocaleString('en')} rows, ${rawDb.toFixed(0)} MiB dump)`,
    rawMiB: rawDb,
    ours: oursDb,
    original: origDb,
  });
  await sql('CREATE DATABASE r1; CREATE DATABASE r2;');
  const oursDbRestore = await time(() => backups.restore(dbManifest!, { database: { defaultsFile: db.configFile, database: 'r1' } }));
  const origDbRestore = await time(async () => {
    await s3cmd('get', '--force', 's3://adt-bench/orig/db.tar.gz', join(dir, 'db-got.tar.gz'));
    await mkdir(join(dir, 'dbx'));
    await execa('tar', ['xzf', join(dir, 'db-got.tar.gz'), '-C', join(dir, 'dbx')]);
    await execa('mariadb', [`--defaults-file=${db.configFile}`, 'r2'], { stdin: { file: join(dir, 'dbx/db.sql') } });
  });
  results.push({
    what: `database restore (${rows.toLocaleString('en')} rows)`,
    rawMiB: rawDb,
    ours: oursDbRestore,
    original: origDbRestore,
  });
  void stat;

  const machine = `${cpus().length} x ${cpus()[0]?.model.trim()}, Node ${process.version}`;
  if (values.json) console.log(JSON.stringify({ machine, results }, null, 2));
  else {
    console.log(`Backup/restore throughput, embedded S3 on loopback; ${machine}\n`);
    console.log('| work | ours (s) | ours (MB/s) | original way (s) | original (MB/s) | original / ours |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of results) {
      const mb = (r.rawMiB * MiB) / 1e6;
      const cells = [
        r.what,
        r.ours.toFixed(1),
        (mb / r.ours).toFixed(0),
        r.original.toFixed(1),
        (mb / r.original).toFixed(0),
        `**${(r.original / r.ours).toFixed(2)}x**`,
      ];
      console.log(`| ${cells.join(' | ')} |`);
    }
  }
} finally {
  client.destroy();
  await maria.stop(db).catch(() => {});
  await s3.stop();
  await removeTempDir(dir);
}
