/**
 * uvu hooks that cannot fail silently, and cleanups that always run to the end: what every suite
 * that makes real things (namespaces, servers, daemons, temp dirs) uses for its `before`/`after`.
 */
import type { Test } from 'uvu';

/**
 * `before`, made loud: uvu swallows an error thrown by a `before` hook (its runner returns from
 * `finally`), so the suite would report green with nothing tested. The error is kept and every
 * case of the suite fails with it.
 */
export function setup<T>(test: Test<T>, fn: (ctx: T) => Promise<void>): void {
  let failure: unknown = null;
  test.before(async (ctx) => {
    try {
      await fn(ctx);
    } catch (e) {
      failure = e;
    }
  });
  test.before.each(() => {
    if (failure) throw failure;
  });
}

let cleanupFailed = false;

/**
 * Runs every cleanup step, each even when an earlier one failed. A failure is printed and makes
 * the run exit 1, but is not thrown: a throw out of uvu's `after` ends the process before the next
 * suites' cleanups.
 */
export async function cleanup(what: string, steps: (() => unknown)[]): Promise<void> {
  for (const [i, step] of steps.entries()) {
    try {
      await step();
    } catch (e) {
      console.error(`cleanup of ${what}, step ${i + 1}, failed:`, e);
      if (!cleanupFailed) process.once('exit', () => (process.exitCode = 1));
      cleanupFailed = true;
    }
  }
}
