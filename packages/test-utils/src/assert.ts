/**
 * Assertions on errors: `rejects` (a promise, or a function returning one) and `throws` (a
 * synchronous call) check what was thrown and hand it back, so a test goes on asserting on it.
 * They replace `try { ...; assert.unreachable() } catch (e) { ... }`, whose `catch` also caught
 * the unreachable assertion itself and so failed, when nothing was thrown, on a misleading check.
 */
import * as assert from 'uvu/assert';
import { isAdtError } from '@adt/core';

/** What the thrown error must be, each field checked when it is given. */
export interface ExpectedError {
  /**
   * The error's stable `code` (rule 14). A code is an @adt error's: the error must also carry the
   * brand (`isAdtError`), so a Node error that happens to have a `code` does not pass for ours.
   */
  code?: string;
  /** The whole message (a string), or a pattern it must match (a RegExp). */
  message?: string | RegExp;
  /** The exit code a role would use (`exitCode` on the error: 2 for bad input). */
  exitCode?: number;
}

/** A code string, a RegExp for the message, or the fields of {@link ExpectedError}. */
export type Expected = string | RegExp | ExpectedError;

/** What a test gets back: an Error with the fields our errors carry, so `e.code` reads without casts. */
export type ThrownError = Error & { code?: string; exitCode?: number; cause?: unknown };

/**
 * Asserts that `promiseOrFn` rejects (a function is called, and a synchronous throw counts too),
 * checks the error against `expected`, and returns it. `label` names the case in every failure
 * (useful in a loop). Fails with an uvu assertion when the promise resolves.
 *
 * @example const e = await rejects(store.get('bad key'), { code: 'INVALID_KEY', exitCode: 2 });
 */
export async function rejects<E = ThrownError>(
  promiseOrFn: Promise<unknown> | (() => unknown),
  expected?: Expected,
  label?: string,
): Promise<E> {
  let value: unknown;
  try {
    value = await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
  } catch (e) {
    check(e, expected, label);
    return e as E;
  }
  return assert.unreachable(prefix(label, `expected a rejection${describe(expected)}, but it resolved to ${show(value)}`)) as never;
}

/**
 * Asserts that `fn()` throws synchronously, checks the error against `expected`, and returns it.
 * A function that returns a promise fails here: use {@link rejects} for those.
 *
 * @example const e = throws(() => configBucketName('', 'b1'), { code: 'INVALID_BUCKET_NAME', exitCode: 2 });
 */
export function throws<E = ThrownError>(fn: () => unknown, expected?: Expected, label?: string): E {
  let value: unknown;
  try {
    value = fn();
  } catch (e) {
    check(e, expected, label);
    return e as E;
  }
  if (value instanceof Promise) {
    // A rejection nobody awaits would end the process later, far from this test.
    value.catch(() => {});
    return assert.unreachable(prefix(label, `expected a synchronous throw${describe(expected)}, got a promise (use rejects)`)) as never;
  }
  return assert.unreachable(prefix(label, `expected a throw${describe(expected)}, but it returned ${show(value)}`)) as never;
}

// --- Internal helpers ---

function check(e: unknown, expected: Expected | undefined, label: string | undefined): void {
  const want: ExpectedError =
    expected === undefined
      ? {}
      : typeof expected === 'string'
        ? { code: expected }
        : expected instanceof RegExp
          ? { message: expected }
          : expected;
  const message = e instanceof Error ? e.message : String(e);
  // The error's own message goes with every failure: it says what was thrown instead.
  const context = prefix(label, message);
  if (want.code !== undefined) {
    assert.ok(isAdtError(e), prefix(label, `expected an @adt error with code ${want.code}, got ${show(e)}`));
    assert.is((e as { code?: unknown }).code, want.code, context);
  }
  if (want.message instanceof RegExp) assert.match(message, want.message, prefix(label, `message ${JSON.stringify(message)}`));
  else if (want.message !== undefined) assert.is(message, want.message, label);
  if (want.exitCode !== undefined) assert.is((e as { exitCode?: unknown } | null)?.exitCode, want.exitCode, context);
}

function describe(expected: Expected | undefined): string {
  if (expected === undefined) return '';
  if (typeof expected === 'string') return ` with code ${expected}`;
  if (expected instanceof RegExp) return ` matching ${expected}`;
  const parts = [
    expected.code !== undefined && `code ${expected.code}`,
    expected.message !== undefined && `message ${expected.message instanceof RegExp ? expected.message : JSON.stringify(expected.message)}`,
    expected.exitCode !== undefined && `exit code ${expected.exitCode}`,
  ].filter(Boolean);
  return parts.length ? ` with ${parts.join(', ')}` : '';
}

function prefix(label: string | undefined, text: string): string {
  return label ? `${label}: ${text}` : text;
}

function show(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
