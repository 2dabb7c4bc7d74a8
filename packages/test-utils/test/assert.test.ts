import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Assertion } from 'uvu/assert';
import { errorFactory } from '@adt/core';
import { rejects, throws } from '../src/index.ts';

const fail = errorFactory('test-utils', 'unit');
const badInput = () => fail('BAD_INPUT', 'name "x" is too short', { exitCode: 2 });

/** The assertion a helper failed with (and that it failed with one, not with something else). */
async function assertionOf(p: Promise<unknown> | (() => unknown)): Promise<Assertion> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof Assertion) return e;
    throw new Error(`expected an uvu Assertion, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected the helper to fail, it passed');
}

const rejecting = suite('rejects');

rejecting('returns the error of a rejected promise, checked by code, message and exit code', async () => {
  const e = await rejects(Promise.reject(badInput()), { code: 'BAD_INPUT', message: /too short/, exitCode: 2 });
  assert.is(e.code, 'BAD_INPUT');
  assert.is(e.exitCode, 2);
});

rejecting('takes a code string or a RegExp for the message as the expectation', async () => {
  assert.is((await rejects(Promise.reject(badInput()), 'BAD_INPUT')).exitCode, 2);
  assert.is((await rejects(Promise.reject(new Error('boom')), /bo+m/)).message, 'boom');
});

rejecting('calls a function, and counts its synchronous throw as a rejection', async () => {
  const e = await rejects(() => {
    throw badInput();
  }, 'BAD_INPUT');
  assert.is(e.code, 'BAD_INPUT');
  assert.is((await rejects(async () => Promise.reject(new Error('later')))).message, 'later');
});

rejecting('without an expectation, any rejection passes and is returned', async () => {
  const thrown = { not: 'an error' };
  assert.is(await rejects(Promise.reject(thrown)), thrown);
});

rejecting('fails with a clear assertion when the promise resolves, naming what it resolved to and the label', async () => {
  const a = await assertionOf(rejects(Promise.resolve(42), { code: 'BAD_INPUT', exitCode: 2 }, 'case 3'));
  assert.is(a.message, 'case 3: expected a rejection with code BAD_INPUT, exit code 2, but it resolved to 42');
  assert.is(a.operator, 'unreachable');
});

rejecting('fails when the code, the message or the exit code differs, quoting the error', async () => {
  const code = await assertionOf(rejects(Promise.reject(badInput()), 'OTHER'));
  assert.match(code.message, /name "x" is too short/);
  const message = await assertionOf(rejects(Promise.reject(badInput()), /too long/));
  assert.match(message.message, /too short/);
  const exact = await assertionOf(rejects(Promise.reject(new Error('boom!')), { message: 'boom' }));
  assert.is(exact.operator, 'is');
  const exit = await assertionOf(rejects(Promise.reject(fail('FAILED', 'x')), { exitCode: 2 }, 'exit'));
  assert.match(exit.message, /^exit: /);
});

rejecting('a code names an @adt error: an error of another kind with that code fails', async () => {
  const node = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  const a = await assertionOf(rejects(Promise.reject(node), 'ENOENT'));
  assert.match(a.message, /expected an @adt error with code ENOENT, got Error: ENOENT: no such file/);
  // Without a code, the same error is fine: the message and exit code checks do not need the brand.
  assert.is(await rejects(Promise.reject(node), /no such file/), node);
});

rejecting.run();

// ---

const throwing = suite('throws');

throwing('returns the error of a synchronous throw, checked like rejects', () => {
  const e = throws(
    () => {
      throw badInput();
    },
    { code: 'BAD_INPUT', message: '[adt:test-utils] [unit] name "x" is too short', exitCode: 2 },
  );
  assert.is(e.code, 'BAD_INPUT');
});

throwing('fails with a clear assertion when nothing is thrown', async () => {
  const a = await assertionOf(() => throws(() => 'fine', /anything/, 'site ""'));
  assert.is(a.message, 'site "": expected a throw matching /anything/, but it returned "fine"');
});

throwing('fails when the function returns a promise, pointing to rejects', async () => {
  const a = await assertionOf(() => throws(async () => Promise.reject(new Error('async'))));
  assert.match(a.message, /got a promise \(use rejects\)/);
});

throwing.run();
