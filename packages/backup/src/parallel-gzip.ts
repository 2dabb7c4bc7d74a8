/**
 * gzip on every core: the input is cut into blocks compressed independently on libuv's thread pool
 * (zlib's async API) and written in order as consecutive gzip members, the way pigz does. The result
 * is a standard multi-member gzip file: `gunzip`, `tar -xz` and Node's gunzip read it as one stream.
 * Memory is bounded: at most `concurrency` blocks in flight.
 */
import { availableParallelism } from 'node:os';
import { Transform } from 'node:stream';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';

const gzipAsync = promisify(gzip);

export interface ParallelGzipOptions {
  /** Bytes per independently compressed block (default 1 MiB). */
  blockSize?: number;
  /** Blocks compressed at once (default: the number of cores, at least 2). */
  concurrency?: number;
  /** zlib level (default 6, gzip's default). */
  level?: number;
}

export function parallelGzip(options: ParallelGzipOptions = {}): Transform {
  const blockSize = options.blockSize ?? 1024 * 1024;
  const concurrency = Math.max(2, options.concurrency ?? availableParallelism());
  const level = options.level ?? 6;
  const inFlight: Promise<Buffer>[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;

  function cut(final: boolean): Buffer[] {
    const all = Buffer.concat(pending);
    const blocks: Buffer[] = [];
    let offset = 0;
    while (all.length - offset >= blockSize || (final && offset < all.length)) {
      blocks.push(all.subarray(offset, offset + blockSize));
      offset += blockSize;
    }
    pending = offset < all.length ? [all.subarray(offset)] : [];
    pendingBytes = all.length - Math.min(offset, all.length);
    return blocks;
  }

  return new Transform({
    async transform(chunk: Buffer, _enc, cb) {
      try {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes < blockSize) return cb();
        for (const block of cut(false)) {
          inFlight.push(gzipAsync(block, { level }));
          // Keep order and bound memory: wait for the oldest block once the pool is full.
          while (inFlight.length >= concurrency) this.push(await inFlight.shift()!);
        }
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    async flush(cb) {
      try {
        for (const block of cut(true)) inFlight.push(gzipAsync(block, { level }));
        while (inFlight.length) this.push(await inFlight.shift()!);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}
