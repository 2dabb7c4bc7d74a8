/** Streaming, measured: backing up a 1 GiB webroot keeps the backup process's peak RSS under 200 MB. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { quietAwsSdk, removeTempDir, tempDir, testS3Client } from '@adt/test-utils';
import { startEmbeddedS3 } from '@adt/localcloud/services/s3';

quietAwsSdk();
const MiB = 1024 * 1024;

/** 1 GiB of files: text-like content (varied lines) so gzip has real work, in 32 files of 32 MiB. */
async function makeWebroot(dir: string): Promise<void> {
  await mkdir(join(dir, 'wp-content/uploads'), { recursive: true });
  const words = randomBytes(4096).toString('base64');
  for (let f = 0; f < 32; f++) {
    const fh = await open(join(dir, 'wp-content/uploads', `file-${f}.txt`), 'w');
    let line = 0;
    const chunk = () => {
      const parts: string[] = [];
      for (let i = 0; i < 2048; i++, line++) parts.push(`${f}:${line} ${words.slice((line * 7) % 4000, ((line * 7) % 4000) + 60)}\n`);
      return Buffer.from(parts.join(''));
    };
    let written = 0;
    while (written < 32 * MiB) {
      const c = chunk();
      await fh.write(c);
      written += c.length;
    }
    await fh.close();
  }
}

const test = suite('backup memory');

test('a 1 GiB webroot is backed up with a peak RSS under 200 MB', async () => {
  const dir = await tempDir('rss');
  const s3 = await startEmbeddedS3({ directory: join(dir, 's3') });
  try {
    const client = testS3Client({ endpoint: s3.endpoint, credentials: s3.credentials });
    await client.send(new CreateBucketCommand({ Bucket: 'adt-rss' }));
    client.destroy();
    await makeWebroot(join(dir, 'www'));
    const tsx = resolve(import.meta.dirname, '../../../node_modules/.bin/tsx');
    const r = await execa(tsx, [join(import.meta.dirname, 'fixtures/backup-rss.ts'), s3.endpoint, 'adt-rss', join(dir, 'www')], {
      timeout: 600_000,
    });
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(out.rawBytes >= 1024 * MiB, `raw ${out.rawBytes}`);
    const peak = `peak RSS ${(out.peakRssKb / 1024).toFixed(0)} MiB`;
    assert.ok(out.peakRssKb * 1024 < 200 * 1000 * 1000, peak);
    console.log(`      1 GiB webroot: ${peak}, stored ${(out.storedBytes / MiB).toFixed(0)} MiB, ${out.seconds} s`);
  } finally {
    await s3.stop();
    await removeTempDir(dir);
  }
});

test.run();
