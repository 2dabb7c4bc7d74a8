/** Follows a growing log file (a server's user-data output): new complete lines on each call, and a tail for errors. */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

export interface LogFollower {
  /** Complete lines written since the last call. */
  lines(): string[];
  /** The last `n` lines seen so far (for error messages). */
  tail(n: number): string;
}

/** `fromEnd`: only what is written from now on (a server kept from an earlier run). */
export function followLog(file: string, { fromEnd = false, maxKept = 200 } = {}): LogFollower {
  let offset = 0;
  if (fromEnd) {
    try {
      offset = statSync(file).size;
    } catch {}
  }
  let partial = '';
  const seen: string[] = [];
  return {
    lines() {
      let size = 0;
      try {
        size = statSync(file).size;
      } catch {
        return [];
      }
      if (size <= offset) return [];
      const fd = openSync(file, 'r');
      try {
        // Bounded read per call: a runaway log cannot make us read gigabytes at once.
        const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
        const n = readSync(fd, buf, 0, buf.length, offset);
        offset += n;
        const text = partial + buf.subarray(0, n).toString('utf8');
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        const out = parts.filter((l) => l.trim() !== '');
        seen.push(...out);
        if (seen.length > maxKept) seen.splice(0, seen.length - maxKept);
        return out;
      } finally {
        closeSync(fd);
      }
    },
    tail(n) {
      this.lines();
      return [...seen, ...(partial ? [partial] : [])]
        .slice(-n)
        .map((l) => `    ${l}`)
        .join('\n');
    },
  };
}
