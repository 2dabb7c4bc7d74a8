/**
 * The local cloud refuses to run without root, clearly: a probe run as the `nobody` user (this
 * file itself runs as root, to switch). Cloud `tnr` (198.19.18.0/24 + 198.19.19.0/24) must never
 * come into being. The probe is bundled by esbuild into one file of its own directory (0755), so
 * `nobody` needs to read neither the checkout (a clone in a 0700 directory is fine) nor its
 * node_modules; Node itself is copied there too when `nobody` cannot run this one.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { execa } from 'execa';
import { cleanup } from '@adt/test-utils';

const SRC = resolve(import.meta.dirname, '../src');

const test = suite<{ dir: string }>('local cloud without root');

test.after(async (ctx) => {
  await cleanup('the not-root probe', [() => ctx.dir && rm(ctx.dir, { recursive: true, force: true })]);
});

test('ensureNetwork and ensureLocalCloud say they need root, with exit code 2, and create nothing', async (ctx) => {
  const state = join(tmpdir(), 'adt-test-tnr');
  const config = {
    cloudId: 'tnr',
    stateDir: state,
    publicCidr: '198.19.18.0/24',
    privateCidr: '198.19.19.0/24',
  };
  const daemonConfig = {
    ...config,
    imageDir: join(state, 'images'),
    ports: { api: 1, s3: 1, smtp: 1, mirror: 1, dns: 1 },
    dirs: { s3: state, dns: state, acme: state, mail: state, mirror: state },
  };
  const script = [
    `import { LocalCloud } from ${JSON.stringify(join(SRC, 'cloud.ts'))};`,
    `import { ensureLocalCloud } from ${JSON.stringify(join(SRC, 'daemon.ts'))};`,
    'const report = (what, e) => process.stdout.write(`${what} ${String(e.code)} ${String(e.exitCode)} ${e.message}\\n`);',
    `try { await new LocalCloud(${JSON.stringify(config)}).ensureNetwork(); console.log('network NO ERROR'); }`,
    "catch (e) { report('network', e); }",
    `try { await ensureLocalCloud(${JSON.stringify(daemonConfig)}); console.log('daemon NO ERROR'); }`,
    "catch (e) { report('daemon', e); }",
    '',
  ].join('\n');
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-notroot-'));
  await chmod(ctx.dir, 0o755);
  const source = join(ctx.dir, 'probe.mts');
  await writeFile(source, script, { mode: 0o600 });
  const file = join(ctx.dir, 'probe.mjs');
  await build({
    entryPoints: [source],
    outfile: file,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  await chmod(file, 0o644);
  const scratch = join(ctx.dir, 'tmp');
  await mkdir(scratch);
  await chmod(scratch, 0o1777);
  const asNobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];
  let node = process.execPath;
  if ((await execa(asNobody[0]!, [...asNobody.slice(1), node, '--version'], { reject: false })).exitCode !== 0) {
    node = join(ctx.dir, 'node');
    await copyFile(process.execPath, node);
    await chmod(node, 0o755);
  }
  const r = await execa(asNobody[0]!, [...asNobody.slice(1), node, file], {
    reject: false,
    env: { HOME: scratch, TMPDIR: scratch, PATH: process.env.PATH ?? '/usr/bin:/bin' },
    extendEnv: false,
    timeout: 60_000,
  });
  const out = r.stdout + r.stderr;
  assert.match(r.stdout, /^network NOT_ROOT 2 \[adt:localcloud\] \[local\] the local cloud needs root .*: run as root$/m, out);
  assert.match(r.stdout, /^daemon NOT_ROOT 2 \[adt:localcloud\] \[daemon\] the local cloud needs root .*: run as root$/m, out);
  assert.not.match((await execa('ip', ['-br', 'link'])).stdout, /^tnr/m, 'no link of the cloud');
  assert.not.match((await execa('ip', ['netns', 'list'])).stdout, /^tnr-/m, 'no namespace of the cloud');
  assert.not.match((await execa('iptables', ['-S'])).stdout, /ADT-tnr-FW/);
  assert.not.ok(existsSync(state), 'no state');
});

test.run();
