import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { rejects, removeTempDir, tempDir, withTempDir } from '../src/index.ts';

const temp = suite('temporary directories');

temp('tempDir makes a fresh adt-<name>- directory under the OS temp directory, private unless told', async () => {
  const a = await tempDir('unit');
  const b = await tempDir('unit', { mode: 0o755 });
  try {
    assert.is(dirname(a), tmpdir());
    assert.match(basename(a), /^adt-unit-\w{6}$/);
    assert.is.not(a, b);
    assert.is((await stat(a)).mode & 0o777, 0o700);
    assert.is((await stat(b)).mode & 0o777, 0o755);
  } finally {
    await removeTempDir(a);
    await removeTempDir(b);
  }
});

temp('removeTempDir removes a directory with its contents, and is fine with one already gone or undefined', async () => {
  const dir = await tempDir('unit');
  await writeFile(`${dir}/file`, 'x');
  await removeTempDir(dir);
  assert.not.ok(existsSync(dir));
  await removeTempDir(dir);
  await removeTempDir(undefined);
});

temp('withTempDir hands a directory to the work, returns its result and removes the directory', async () => {
  let seen = '';
  const r = await withTempDir('unit', async (dir) => {
    seen = dir;
    await writeFile(`${dir}/file`, 'x');
    return 7;
  });
  assert.is(r, 7);
  assert.ok(seen);
  assert.not.ok(existsSync(seen));
});

temp('withTempDir removes the directory when the work throws, and lets the error through', async () => {
  let seen = '';
  await rejects(
    withTempDir('unit', (dir) => {
      seen = dir;
      throw new Error('work failed');
    }),
    { message: 'work failed' },
  );
  assert.ok(seen);
  assert.not.ok(existsSync(seen));
});

temp.run();
