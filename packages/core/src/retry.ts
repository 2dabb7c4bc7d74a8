/** Retry with exponential backoff and full jitter, bounded in attempts. */

export interface RetryOptions {
  /** Total attempts including the first (default 4). */
  attempts?: number;
  /** Delay before the second attempt, in ms (default 100). */
  baseMs?: number;
  /** Upper bound of one delay, in ms (default 3 000). */
  maxMs?: number;
  /** Whether an error may be retried (default: always). */
  retryable?: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log "retrying in 200 ms". */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
  /** Injected for tests: returns a number in [0, 1). */
  random?: () => number;
}

export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  // Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): spreads retries of many clients.
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 4);
  const baseMs = options.baseMs ?? 100;
  const maxMs = options.maxMs ?? 3_000;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      lastError = error;
      if (attempt === attempts || (options.retryable && !options.retryable(error))) throw error;
      const delay = backoffDelay(attempt, baseMs, maxMs, options.random);
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
  throw lastError;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
