/** The local cloud refuses to run without root, clearly (run as the `nobody` user). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resolve } from 'node:path';
import { execa } from 'execa';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTempDir, tempDir } from '@adt/test-utils';

const test = suite('local cloud without root');

test('ensureNetwork says it needs root, with exit code 2, and creates nothing', async () => {
  const root = resolve(import.meta.dirname, '../../../..');
  const options = { cloudId: 'tnr', stateDir: '/tmp/adt-notroot-state', publicCidr: '198.19.14.0/24', privateCidr: '198.19.15.0/24' };
  const script =
    `import localDriver from '${resolve(import.meta.dirname, '../../src/drivers/local.ts')}';\n` +
    `try { await localDriver(${JSON.stringify(options)}).ensureNetwork(); console.log('NO ERROR'); }\n` +
    `catch (e) { process.stdout.write(String(e.code) + ' ' + String(e.exitCode) + ' ' + e.message + '\\n'); }\n`;
  const dir = await tempDir('notroot', { mode: 0o755 });
  const file = join(dir, 'probe.mts');
  await writeFile(file, script, { mode: 0o644 });
  const scratch = join(dir, 'tmp');
  await import('node:fs/promises').then((fs) => fs.mkdir(scratch, { mode: 0o1777 })).then(() => chmod(scratch, 0o1777));
  const r = await execa('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', `${root}/node_modules/.bin/tsx`, file], {
    reject: false,
    env: { HOME: scratch, TMPDIR: scratch, PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeout: 60_000,
  }).finally(() => removeTempDir(dir));
  assert.match(r.stdout, /^NOT_ROOT 2 .*needs root/m, r.stdout + r.stderr);
  const links = await execa('ip', ['-br', 'link']);
  assert.not.match(links.stdout, /tnr-/);
});

test.run();
