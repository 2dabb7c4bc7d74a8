/**
 * The role bundle and the runtime, built from this checkout: reproducible, cached by their inputs, every command a link to
 * the launcher.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lstatSync, readlinkSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { removeTempDir, tempDir } from '@adt/test-utils';
import { buildBundle, buildRuntime, bundleInputHash } from '../src/index.ts';

const root = resolve(import.meta.dirname, '../../..');
const test = suite<{ dir: string }>('the role bundle');

test.before(async (ctx) => {
  ctx.dir = await tempDir('adt-bundle-test-');
});
test.after(async (ctx) => removeTempDir(ctx.dir));

test('built once, then taken from the cache while its inputs do not change; a note changes it', async ({ dir }) => {
  const first = await buildBundle({ root, cacheDir: join(dir, 'cache') });
  assert.not.ok(first.cached);
  assert.match(first.sha256, /^[0-9a-f]{64}$/);
  const again = await buildBundle({ root, cacheDir: join(dir, 'cache') });
  assert.ok(again.cached);
  assert.is(again.sha256, first.sha256);
  assert.is.not(bundleInputHash({ root, note: 'x' }), bundleInputHash({ root }));
});

test('reproducible: built again elsewhere, the same bytes', async ({ dir }) => {
  const a = await buildBundle({ root, cacheDir: join(dir, 'a') });
  const b = await buildBundle({ root, cacheDir: join(dir, 'b') });
  assert.is(b.sha256, a.sha256);
});

test('it holds each role program and the commands, as links to the one launcher', async ({ dir }) => {
  const b = await buildBundle({ root, cacheDir: join(dir, 'cache') });
  const out = join(dir, 'unpacked');
  await execa('mkdir', ['-p', out]);
  await execa('tar', ['-xzf', b.file, '-C', out]);
  for (const role of ['webserver', 'database', 'autoscaler', 'auth', 'common'])
    assert.ok(lstatSync(join(out, 'dist', `${role}.mjs`)).isFile(), `${role}.mjs`);
  assert.is(readlinkSync(join(out, 'roles/webserver/bootstrap')), '../common/bin/adt-run');
  assert.is(readlinkSync(join(out, 'roles/autoscaler/ManuallyScale.ts')), '../common/bin/adt-run');
  assert.is(readlinkSync(join(out, 'roles/database/backup/Backup')), '../../common/bin/adt-run');
  assert.is(readlinkSync(join(out, 'roles/webserver/providerscripts/datastore/configwrapper')), '../../../common/configwrapper');
  assert.is(readlinkSync(join(out, 'roles/common/configwrapper/PutToConfigDatastore')), '../bin/adt-run');
  const manifest = JSON.parse(readFileSync(join(out, 'BUNDLE.json'), 'utf8'));
  assert.equal(manifest.roles, ['webserver', 'database', 'autoscaler', 'auth']);
  const list = (await execa('tar', ['-tzf', b.file])).stdout;
  assert.not.match(list, /node_modules|\/src\/|\/test\//, 'no sources, tests or node_modules: the programs are bundled');
});

test("the runtime is this machine's Node 20, checksummed; another Node is refused", async ({ dir }) => {
  const rt = await buildRuntime({ cacheDir: join(dir, 'cache') });
  assert.is(rt.node, process.version);
  const list = (await execa('tar', ['-tzf', rt.file])).stdout;
  assert.match(list, new RegExp(`^${rt.dir}/bin/node$`, 'm'));
  const e = await buildRuntime({ cacheDir: join(dir, 'cache'), nodeVersion: 'v18.20.4' }).catch((x: Error) => x);
  assert.match((e as Error).message, /servers run Node 20/);
});

test.run();
