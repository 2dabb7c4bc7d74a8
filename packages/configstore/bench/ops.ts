/**
 * Per-operation latency of put, get, list (a prefix of 200 keys) and delete:
 *   - our ConfigStore, in one process;
 *   - a bare @aws-sdk/client-s3 call (the limit on this server);
 *   - the original's way: one `s3cmd` process per operation (Debian's s3cmd).
 * All against the same embedded S3 server, in the same run. Prints a Markdown table (or JSON with --json).
 *
 * Run: npm run bench -w @adt/configstore   (or: npx tsx packages/configstore/bench/ops.ts [--json])
 */
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { PutObjectCommand, GetObjectCommand, ListObjectsV2Command, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { quietAwsSdk, removeTempDir, tempDir, testS3Client, writeS3cmdConfig } from '@adt/test-utils';
import { startEmbeddedS3 } from '@adt/localcloud/services/s3';
import s3Driver from '../src/drivers/s3.ts';
import { ConfigStore } from '../src/index.ts';

quietAwsSdk();
const json = process.argv.includes('--json');
const OURS = 200; // iterations per op for in-process clients
const S3CMD = 15; // iterations per op for s3cmd (about 0.1 s each)
const BUCKET = 'adt-bench';

const dir = await tempDir('bench');
const s3 = await startEmbeddedS3({ directory: join(dir, 'data') });
try {
  const store = new ConfigStore({
    driver: s3Driver({ bucket: BUCKET, endpoint: s3.endpoint, credentials: s3.credentials }),
    writeBudget: null,
  });
  await store.ensureBucket();
  const bare = testS3Client({ endpoint: s3.endpoint, credentials: s3.credentials });
  const cfg = join(dir, 's3cfg');
  await writeS3cmdConfig(cfg, s3);
  const value = { name: 'ws-ams3-prod1-1-init-1', role: 'webserver', privateIp: '198.18.1.5', at: new Date().toISOString() };
  const valueFile = join(dir, 'value.json');
  await writeFile(valueFile, JSON.stringify(value));
  for (let i = 0; i < 200; i++) await store.put(`listed/${String(i).padStart(3, '0')}`, value);

  async function time(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
    for (let i = 0; i < Math.min(5, n); i++) await fn(i); // warm-up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn(i);
    return Number(process.hrtime.bigint() - t0) / 1e6 / n;
  }

  const s3cmd = (...args: string[]) => execa('s3cmd', ['-c', cfg, '--no-progress', '-q', ...args], { timeout: 30_000 });
  const rows: { op: string; ours: number; bare: number; s3cmd: number }[] = [];

  rows.push({
    op: 'put',
    ours: await time(OURS, (i) => store.put(`bench/ours-${i}`, value)),
    bare: await time(OURS, (i) =>
      bare.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: `bench/bare-${i}`, Body: JSON.stringify(value), ContentType: 'application/json' }),
      ),
    ),
    s3cmd: await time(S3CMD, (i) => s3cmd('put', valueFile, `s3://${BUCKET}/bench/s3cmd-${i}`)),
  });
  const out = join(dir, 'out.json');
  rows.push({
    op: 'get',
    ours: await time(OURS, (i) => store.get(`bench/ours-${i}`)),
    bare: await time(OURS, async (i) =>
      (await bare.send(new GetObjectCommand({ Bucket: BUCKET, Key: `bench/bare-${i}` }))).Body!.transformToString(),
    ),
    s3cmd: await time(S3CMD, (i) => s3cmd('get', '--force', `s3://${BUCKET}/bench/s3cmd-${i}`, out)),
  });
  rows.push({
    op: 'list (200 keys)',
    ours: await time(50, () => store.list('listed/')),
    bare: await time(50, () => bare.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'listed/' }))),
    s3cmd: await time(S3CMD, () => s3cmd('ls', `s3://${BUCKET}/listed/`)),
  });
  rows.push({
    op: 'delete',
    ours: await time(OURS, (i) => store.delete(`bench/ours-${i}`)),
    bare: await time(OURS, (i) => bare.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `bench/bare-${i}` }))),
    s3cmd: await time(S3CMD, (i) => s3cmd('del', `s3://${BUCKET}/bench/s3cmd-${i}`)),
  });
  bare.destroy();
  await store.driver.dispose?.();

  const machine = `${cpus().length} x ${cpus()[0]?.model.trim()}, Node ${process.version}`;
  if (json) {
    console.log(JSON.stringify({ machine, rows }, null, 2));
  } else {
    console.log(`Config datastore, per-operation latency (ms), embedded s3rver on loopback; ${machine}\n`);
    console.log('| operation | ConfigStore | bare SDK call | s3cmd process (original) | s3cmd / ours | ours / bare SDK |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const cells = [
        r.op,
        r.ours.toFixed(2),
        r.bare.toFixed(2),
        r.s3cmd.toFixed(1),
        `**${(r.s3cmd / r.ours).toFixed(0)}x**`,
        (r.ours / r.bare).toFixed(2),
      ];
      console.log(`| ${cells.join(' | ')} |`);
    }
  }
} finally {
  await s3.stop();
  await removeTempDir(dir);
}
