/** makeInert on trees made by hand (what tar would have unpacked), real files on the real file system. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { link, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeInert } from '../src/index.ts';

const test = suite('makeInert');

async function tree(build: (dir: string, outside: string) => Promise<void>): Promise<{ base: string; dir: string }> {
  const base = await mkdtemp(join(tmpdir(), 'adt-inert-'));
  const dir = join(base, 'tree');
  await mkdir(join(dir, 'wp-content', 'uploads'), { recursive: true });
  await writeFile(join(dir, 'index.php'), '<?php\n');
  await writeFile(join(base, 'secret.php'), 'DB_PASSWORD');
  await build(dir, base);
  return { base, dir };
}

test('a tree whose links stay inside passes; setuid and setgid bits are cleared', async () => {
  const { base, dir } = await tree(async (d) => {
    await symlink('../index.php', join(d, 'wp-content', 'index.php'));
    await link(join(d, 'index.php'), join(d, 'hard.php'));
    await writeFile(join(d, 'tool'), '', { mode: 0o6755 });
  });
  try {
    const r = await makeInert(dir, 'test tree');
    assert.equal(r.specialBitsCleared, ['tool']);
    assert.is((await stat(join(dir, 'tool'))).mode & 0o7777, 0o755);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('a hard link to a file outside the tree is refused', async () => {
  const { base, dir } = await tree((d, outside) => link(join(outside, 'secret.php'), join(d, 'config.php')));
  try {
    await makeInert(dir, 'test tree').then(
      () => assert.unreachable('resolved'),
      (e: Error & { code?: string }) => {
        assert.is(e.code, 'RESTORE_REFUSED');
        assert.match(e.message, /config\.php" is hard-linked to a file outside/);
      },
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('a link that leaves a subtree is refused when the subtree is checked alone (uploads go elsewhere)', async () => {
  const { base, dir } = await tree((d) => symlink('../../index.php', join(d, 'wp-content', 'uploads', 'x.php')));
  try {
    await makeInert(dir, 'whole tree');
    await makeInert(join(dir, 'wp-content', 'uploads'), 'uploads').then(
      () => assert.unreachable('resolved'),
      (e: Error & { code?: string }) => assert.is(e.code, 'RESTORE_REFUSED'),
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test.run();
