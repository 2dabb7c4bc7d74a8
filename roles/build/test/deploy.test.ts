/** deploy.mjs as a user runs it: through zx, as a process. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { freePort } from '@adt/core';

const root = resolve(import.meta.dirname, '../../..');
const deploy = (args: string[], env: Record<string, string> = {}) =>
  execa(join(root, 'node_modules/.bin/zx'), [join(root, 'roles/build/deploy.mjs'), ...args], { cwd: root, env, reject: false, timeout: 60_000 });

const test = suite<{ dir: string; pids: number[] }>('deploy (foundation stage)');
test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-deploy-'));
  ctx.pids = [];
});
test.after(async (ctx) => {
  for (const pid of ctx.pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
  await new Promise((r) => setTimeout(r, 300));
  await rm(ctx.dir, { recursive: true, force: true });
});

test('--dry-run prints the plan as JSON and creates nothing', async ({ dir }) => {
  const state = join(dir, 'dry');
  const r = await deploy(['--dry-run', '--json'], { ADT_STATE_DIR: state });
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.dryRun, true);
  assert.is(out.plan.configBucket, 'www-adt-test-config-dev1');
  assert.not.ok(existsSync(state));
});

test('a bad deployment file reports every problem at once, exits 2, creates nothing', async ({ dir }) => {
  const file = join(dir, 'bad.env');
  await writeFile(file, `SITE_URL=not a host\nBUILD_ID=Bad_Id\nMODE=staging\nS3_PORT=80\nS3_ADDRESS=203.0.113.9\nCOLOUR=blue\nSTATE_DIR=${join(dir, 'bad-state')}\n`);
  const r = await deploy(['--config', file]);
  assert.is(r.exitCode, 2);
  for (const v of ['SITE_URL="not a host"', 'BUILD_ID="Bad_Id"', 'MODE="staging"', 'S3_PORT="80"', 'S3_ADDRESS="203.0.113.9"', 'COLOUR: unknown']) assert.ok(r.stderr.includes(v), `${v} in ${r.stderr}`);
  assert.not.ok(existsSync(join(dir, 'bad-state')));
  const missing = await deploy(['--config', join(dir, 'nope.env')]);
  assert.is(missing.exitCode, 2);
  assert.match(missing.stderr, /nope\.env does not exist/);
});

test('a real run starts the embedded S3, prepares the bucket and the key, and a second run reuses the server', async (ctx) => {
  const port = await freePort();
  const state = join(ctx.dir, 'state');
  const file = join(ctx.dir, 'site.env');
  await writeFile(file, `SITE_URL=shop.example.org\nBUILD_ID=t1\nS3_PORT=${port}\nSTATE_DIR=${state}\n`);
  const r = await deploy(['--config', file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  ctx.pids.push(out.s3Pid);
  assert.is(out.configBucket, 'shop-example-org-config-t1');
  assert.is(out.s3Endpoint, `http://127.0.0.1:${port}`);
  assert.is(statSync(out.keyFile).mode & 0o777, 0o600);
  assert.match(readFileSync(out.keyFile, 'utf8'), /^[0-9a-f]{64}$/);
  assert.ok(existsSync(join(state, 's3/data/shop-example-org-config-t1')), 'bucket on disk');
  assert.match(r.stderr, /\[1\/3\]/, 'progress goes to stderr with --json');
  const again = await deploy(['--config', file, '--json']);
  assert.is(again.exitCode, 0, again.stderr);
  assert.is(JSON.parse(again.stdout).s3Pid, out.s3Pid, 'the running server is reused');
  assert.match(again.stderr, /already running/);
  assert.is.not(readFileSync(out.keyFile, 'utf8'), '', 'a new build gets a key');
});

test.run();
