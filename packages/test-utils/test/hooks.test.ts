/**
 * setup and cleanup, each in a child process of its own (a uvu run is one per process): what the
 * run prints and how it exits is what is checked.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { removeTempDir } from '../src/index.ts';

const INDEX = resolve(import.meta.dirname, '../src/index.ts');
const TSX = resolve(import.meta.dirname, '../../../node_modules/.bin/tsx');

/**
 * Runs a small test file (its text given) with tsx; its exit code and output. It is written in a
 * temporary directory inside this package, so that it finds uvu (named probe.ts: no test runner
 * takes it for one of ours).
 */
async function runFile(text: string): Promise<{ exitCode: number; out: string }> {
  const dir = await mkdtemp(join(import.meta.dirname, '.probe-'));
  try {
    const file = join(dir, 'probe.ts');
    await writeFile(file, text.replaceAll('INDEX', JSON.stringify(INDEX)));
    const r = await execa(TSX, [file], { reject: false, all: true, timeout: 60_000, env: { NO_COLOR: '1' } });
    return { exitCode: r.exitCode ?? 124, out: String(r.all) };
  } finally {
    await removeTempDir(dir);
  }
}

const hooks = suite('setup and cleanup');

hooks('a plain `before` that throws leaves the run green (why setup exists)', async () => {
  const r = await runFile(`
import { suite } from 'uvu';
const t = suite('plain');
t.before(async () => { throw new Error('no cloud today'); });
t('a case', () => {});
t.run();
`);
  assert.is(r.exitCode, 0, r.out);
});

hooks('with setup, a failing hook fails every case of the suite with its error, and the run exits 1', async () => {
  const r = await runFile(`
import { suite } from 'uvu';
import { setup } from INDEX;
const t = suite('loud');
setup(t, async () => { throw new Error('no cloud today'); });
t('first case', () => {});
t('second case', () => {});
t.run();
`);
  assert.is(r.exitCode, 1, r.out);
  assert.match(r.out, /no cloud today/);
  assert.match(r.out, /Total:\s+2\s+Passed:\s+0/);
});

hooks('setup passes the context on, and the cases run when the hook succeeds', async () => {
  const r = await runFile(`
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setup } from INDEX;
const t = suite<{ n: number }>('fine');
setup(t, async (ctx) => { ctx.n = 42; });
t('sees the context', (ctx) => assert.is(ctx.n, 42));
t.run();
`);
  assert.is(r.exitCode, 0, r.out);
  assert.match(r.out, /Passed:\s+1/);
});

hooks('cleanup runs every step even after one failed, says which, and makes the run exit 1 without throwing', async () => {
  const r = await runFile(`
import { suite } from 'uvu';
import { cleanup } from INDEX;
const t = suite('cleaning');
t.after(async () => {
  await cleanup('the probe', [
    () => console.log('step one ran'),
    () => { throw new Error('step two broke'); },
    async () => console.log('step three ran'),
  ]);
  console.log('after went on');
});
t('a case', () => {});
t.run();
const u = suite('next suite');
u('still runs', () => console.log('next suite ran'));
u.run();
`);
  assert.is(r.exitCode, 1, r.out);
  for (const line of ['step one ran', 'step three ran', 'after went on', 'next suite ran'])
    assert.ok(r.out.includes(line), `${line}: ${r.out}`);
  assert.match(r.out, /cleanup of the probe, step 2, failed:.*step two broke/s);
});

hooks.run();
