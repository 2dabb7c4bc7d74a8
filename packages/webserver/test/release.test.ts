/**
 * Releases on a webserver's disk, for real (tar, cp, chown; PHP for the config): the first release
 * from Debian's WordPress, pack and install round trip, the switch of `current`, pruning; and the
 * application's config in release mode, run by PHP itself.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, readlink, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { removeTempDir, tempDir, throws, rejects } from '@adt/test-utils';
import {
  checkReleaseId,
  codeDir,
  currentRelease,
  fileDigest,
  installRelease,
  makeCurrent,
  newReleaseId,
  packRelease,
  pruneReleases,
  stockCode,
  uploadsDir,
  wordpressConfigPhp,
} from '../src/index.ts';

const test = suite<{ dir: string }>('releases of the code on a webserver');
test.before(async (ctx) => {
  ctx.dir = await tempDir('adt-release-');
});
test.after(async (ctx) => removeTempDir(ctx.dir));

const STOCK = existsSync('/usr/share/wordpress/wp-load.php') && existsSync('/var/lib/wordpress/wp-content');

test('ids sort by time and are checked (exit 2) before they name a directory', () => {
  const a = newReleaseId(new Date('2026-12-02T05:00:00Z'));
  const b = newReleaseId(new Date('2026-12-02T05:00:01Z'));
  assert.match(a, /^r20261202T050000Z-[0-9a-f]{6}$/);
  assert.ok(a < b);
  for (const bad of ['../etc', 'r2026', `${a}/..`, '']) throws(() => checkReleaseId(bad), { code: 'BAD_RELEASE_ID', exitCode: 2 });
});

test("the first release is Debian's WordPress, self-contained: its links followed, the site's wp-content in place of the core's", async ({
  dir,
}) => {
  assert.ok(STOCK, 'Debian wordpress is installed (scripts/setup.sh)');
  const code = await stockCode('/usr/share/wordpress', '/var/lib/wordpress/wp-content', join(dir, 'stock'));
  assert.ok(existsSync(join(code, 'wp-load.php')));
  assert.ok((await stat(join(code, 'wp-content/themes/twentytwentythree'))).isDirectory(), 'the theme, as a copy');
  assert.not.ok((await lstat(join(code, 'wp-content/plugins/akismet'))).isSymbolicLink(), 'a copy, not a link to the package');
  const links = (await execa('find', [code, '-type', 'l'])).stdout.trim();
  assert.is(links, '', 'no link left');
  assert.not.ok(existsSync(join(code, 'wp-content/uploads')), 'no uploads: they are shared');
});

test('pack and install: the same tree, owned by root, its uploads linked to the shared files; current switches atomically', async ({
  dir,
}) => {
  const site = { siteDir: join(dir, 'site') };
  const code = join(dir, 'stock');
  await mkdir(join(code, 'wp-content/uploads/2026'), { recursive: true });
  await writeFile(join(code, 'wp-content/uploads/2026/big.bin'), 'an upload: never in a release');
  await mkdir(join(code, 'wp-content/cache'), { recursive: true });
  await writeFile(join(code, 'wp-content/cache/x'), 'cache');
  const packed = await packRelease(code, join(dir, 'r1.tar.gz'));
  assert.equal(await fileDigest(packed.file), { sha256: packed.sha256, bytes: packed.bytes });
  const listing = (await execa('tar', ['-tzf', packed.file])).stdout.split('\n');
  assert.ok(listing.includes('./wp-load.php'));
  assert.not.ok(
    listing.some((l) => l.startsWith('./wp-content/uploads') || l.startsWith('./wp-content/cache')),
    'no uploads, no cache',
  );

  const id1 = newReleaseId(new Date('2026-12-02T05:00:00Z'));
  const id2 = newReleaseId(new Date('2026-12-02T05:00:01Z'));
  for (const id of [id1, id2]) await installRelease(site, id, packed.file, { writable: false });
  const c1 = codeDir(site, id1);
  assert.is(await readFile(join(c1, 'wp-load.php'), 'utf8'), await readFile(join(code, 'wp-load.php'), 'utf8'));
  assert.is(await readlink(join(c1, 'wp-content/uploads')), uploadsDir(site));
  const st = await stat(join(c1, 'wp-content/plugins'));
  assert.is(st.uid, 0);
  assert.is(st.mode & 0o022, 0, 'not writable but by root');
  assert.is(await currentRelease(site), null);
  await makeCurrent(site, id1);
  assert.is(await currentRelease(site), id1);
  await makeCurrent(site, id2);
  assert.is(await currentRelease(site), id2);
  assert.equal(
    (await readdir(site.siteDir)).filter((n) => n.startsWith('current')),
    ['current'],
    'no temporary link left',
  );
  await rejects(() => makeCurrent(site, newReleaseId()), { code: 'NOT_INSTALLED' });
});

test("development: the site wp-content is the PHP user's to change", async ({ dir }) => {
  const site = { siteDir: join(dir, 'dev') };
  const id = newReleaseId();
  await installRelease(site, id, join(dir, 'r1.tar.gz'), { writable: true, owner: { uid: 33, gid: 33 } });
  assert.is((await stat(join(codeDir(site, id), 'wp-content/plugins'))).uid, 33);
  assert.is((await stat(join(codeDir(site, id), 'wp-load.php'))).uid, 0, "the core stays root's");
});

test('pruning keeps the newest, the current one and the one named, and drops unfinished unpacks', async ({ dir }) => {
  const site = { siteDir: join(dir, 'site') };
  const ids: string[] = [];
  for (let i = 2; i < 6; i++) {
    const id = newReleaseId(new Date(`2026-12-02T05:00:0${i}Z`));
    ids.push(id);
    await installRelease(site, id, join(dir, 'r1.tar.gz'), { writable: false });
  }
  await mkdir(join(site.siteDir, 'releases', `${ids[0]}.partial-abc123`));
  const all = (await readdir(join(site.siteDir, 'releases'))).filter((n) => !n.includes('.partial-')).sort();
  const current = (await currentRelease(site))!;
  const removed = await pruneReleases(site, 2, [all[0]!]);
  const left = (await readdir(join(site.siteDir, 'releases'))).sort();
  assert.ok(left.includes(current), 'the current one');
  assert.ok(left.includes(all[0]!), 'the one named');
  assert.ok(left.includes(all.at(-1)!) && left.includes(all.at(-2)!), 'the 2 newest');
  assert.ok(
    removed.some((r) => r.includes('.partial-')),
    'the unfinished unpack',
  );
  assert.is(left.length, 4);
});

test('a directory that is no WordPress is refused (exit 2), naming it', async ({ dir }) => {
  await mkdir(join(dir, 'empty'));
  await rejects(() => packRelease(join(dir, 'empty'), join(dir, 'x.tar.gz')), { code: 'NOT_A_SITE', exitCode: 2 });
});

test.run();

const config = suite("WordPress's config in release mode, run by PHP");
const base = {
  siteUrl: 'https://www.shop.example',
  db: { host: '198.18.1.2', port: 3306, name: 'app', user: 'app', password: 'pw' },
};

/** What PHP makes of the config with this document root: the constants, the header it sends. */
async function runConfig(php: string, documentRoot: string) {
  const script = `${php.replace(/^<\?php/, '')}
echo json_encode(array('abspath' => ABSPATH, 'content' => WP_CONTENT_DIR, 'release' => ADT_RELEASE,
  'mods' => defined('DISALLOW_FILE_MODS') ? DISALLOW_FILE_MODS : null,
  'notice' => isset($GLOBALS['wp_filter']['admin_notices']) ? count($GLOBALS['wp_filter']['admin_notices'][10]) : 0));`;
  const r = await execa('php', [
    '-d',
    'display_errors=stderr',
    '-r',
    `$_SERVER['DOCUMENT_ROOT'] = ${JSON.stringify(documentRoot)}; ${script}`,
  ]);
  return JSON.parse(r.stdout) as { abspath: string; content: string; release: string; mods: boolean | null; notice: number };
}

config(
  'the code a request runs is its document root, a release of its own; production switches file changes off and says why',
  async () => {
    const dir = await tempDir('adt-release-config-');
    try {
      const id = newReleaseId();
      const code = join(dir, 'releases', id, 'code');
      await mkdir(code, { recursive: true });
      await writeFile(join(code, 'wp-load.php'), '<?php');
      const releases = { production: true, releaseCommand: 'roles/build/Release publish', currentCode: join(dir, 'current/code') };
      const prod = wordpressConfigPhp({ ...base, releases });
      assert.match(prod, /roles\/build\/Release publish/);
      const p = await runConfig(prod, code);
      assert.equal(p, { abspath: `${code}/`, content: `${code}/wp-content`, release: id, mods: true, notice: 1 });
      const dev = await runConfig(wordpressConfigPhp({ ...base, releases: { ...releases, production: false } }), code);
      assert.equal([dev.release, dev.mods, dev.notice], [id, null, 0], "development keeps WordPress's own file changes");
      assert.not.match(wordpressConfigPhp(base), /ADT_RELEASE/, 'without releases, the Debian layout as before');
    } finally {
      await removeTempDir(dir);
    }
  },
);

config.run();
