/** One way to wait for something: poll until it holds, bounded by a deadline. */
import { AdtError } from './errors.ts';
import { sleep } from './retry.ts';

export interface PollOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Pause between attempts (default 500 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout message ("the database to accept this webserver"). */
  what?: string;
  /** Errors thrown by the check count as "not yet" instead of ending the wait (default false). */
  ignoreErrors?: boolean;
  signal?: AbortSignal;
}

/** The error of a wait that ran out of time; `code` is `TIMEOUT`, `exitCode` 1. */
export function timeoutError(what: string, timeoutMs: number, cause?: unknown): AdtError {
  return new AdtError('TIMEOUT', `timed out after ${timeoutMs / 1000} s waiting for ${what}`, { pkg: 'core', cause });
}

/**
 * Calls `check` until it returns something other than `null`, `undefined` or `false`, and returns
 * that. At most `timeoutMs` (the last attempt starts before the deadline); then throws
 * `timeoutError` naming `what`, with the last error seen (when `ignoreErrors`) as its cause.
 */
export async function pollUntil<T>(check: (attempt: number) => Promise<T | null | undefined | false>, o: PollOptions): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  let lastError: unknown;
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted();
    try {
      const v = await check(attempt);
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (e) {
      if (!o.ignoreErrors) throw e;
      lastError = e;
    }
    if (Date.now() >= deadline) throw timeoutError(o.what ?? 'a condition', o.timeoutMs, lastError);
    await sleep(Math.min(o.intervalMs ?? 500, Math.max(0, deadline - Date.now())), o.signal);
  }
}
