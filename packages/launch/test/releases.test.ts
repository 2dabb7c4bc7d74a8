/** Releases in the config bucket, against a real S3 server: upload, the record, download checked by SHA-256, rollback. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ConfigStore, keys, type Release } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import { fileDigest } from '@adt/webserver';
import { quietAwsSdk, rejects, removeTempDir, tempDir, testS3Client } from '@adt/test-utils';
import { downloadRelease, endRollout, makeReleaseCurrent, releaseObject, rollBackRelease, uploadRelease } from '../src/index.ts';

quietAwsSdk();
const test = suite<{ s3: EmbeddedS3; dir: string }>('releases in the config bucket');
test.before(async (ctx) => {
  ctx.dir = await tempDir('adt-releases-');
  ctx.s3 = await startEmbeddedS3({ directory: join(ctx.dir, 's3') });
});
test.after(async (ctx) => {
  await ctx.s3?.stop();
  await removeTempDir(ctx.dir);
});

test('published, named current, read back checked; rolled back to the one before; a changed archive is refused', async ({ s3, dir }) => {
  const client = testS3Client({ endpoint: s3.endpoint, credentials: s3.credentials });
  const store = new ConfigStore({ driver: s3Driver({ bucket: 'cfg-r1', client }), secretKey: Buffer.alloc(32, 2), writeBudget: null });
  await store.ensureBucket();
  const made: Release[] = [];
  for (const [i, content] of ['one', 'two', 'three'].entries()) {
    const file = join(dir, `${content}.tar.gz`);
    await writeFile(file, `release ${content}`);
    const release = await uploadRelease(
      client,
      'cfg-r1',
      { file, ...(await fileDigest(file)) },
      `test ${content}`,
      new Date(Date.UTC(2026, 11, 2, 5, 0, i)),
    );
    const record = await makeReleaseCurrent(store, release);
    assert.is(record.current.id, release.id);
    assert.is(record.replacing, made.at(-1)?.id, 'the one it replaces, while it rolls out');
    made.push(release);
  }
  let record = (await store.get(keys.releases))!;
  assert.equal(
    record.previous.map((r) => r.id),
    [made[1]!.id, made[0]!.id],
    'newest first',
  );
  await endRollout(store, made[2]!.id);
  assert.is((await store.get(keys.releases))!.replacing, undefined, 'the rollout ended');

  const got = join(dir, 'got');
  await downloadRelease(client, 'cfg-r1', made[1]!, got);
  assert.is(await readFile(got, 'utf8'), 'release two');

  const back = await rollBackRelease(store);
  assert.is(back.record.current.id, made[1]!.id);
  assert.is(back.record.replacing, made[2]!.id, 'the one left is still healthy until the rollout ends');
  assert.equal(
    back.record.previous.map((r) => r.id),
    [made[0]!.id],
  );
  await rejects(() => rollBackRelease(store, 'r20990101T000000Z-000000'), { code: 'NO_EARLIER_RELEASE', exitCode: 2 });
  await rollBackRelease(store);
  await rejects(() => rollBackRelease(store), { code: 'NO_EARLIER_RELEASE', exitCode: 2 });
  record = (await store.get(keys.releases))!;
  assert.is(record.current.id, made[0]!.id);

  // Someone changed the archive in the bucket: it is not installed.
  await client.send(new PutObjectCommand({ Bucket: 'cfg-r1', Key: releaseObject(made[0]!.id), Body: 'release ONE' }));
  await rejects(() => downloadRelease(client, 'cfg-r1', made[0]!, join(dir, 'bad')), { code: 'RELEASE_MISMATCH' });
});

test.run();
