/**
 * In-memory driver, for unit tests of the layers above and for dry runs. Never a stand-in for S3 in
 * the tests an issue asks for.
 */
import { createHash } from 'node:crypto';
import { PreconditionFailed } from '../errors.ts';
import type { ObjectDriver, StoredObject, WriteOptions } from '../types.ts';

export const DRIVER_NAME = 'memory';

export interface MemoryDriverOptions {
  /** Bucket name reported by the driver (default `memory`). */
  bucket?: string;
  /** Whether conditional writes are honoured (default true); false mimics a backend that ignores them. */
  conditionalWrites?: boolean;
  /** Clock in ms (default `Date.now`), injectable for expiry tests. */
  now?: () => number;
}

export default function memoryDriver(options: MemoryDriverOptions = {}): ObjectDriver & { objects: Map<string, StoredObject> } {
  const objects = new Map<string, StoredObject>();
  const now = options.now ?? Date.now;
  const conditional = options.conditionalWrites ?? true;
  let exists = true;
  return {
    name: DRIVER_NAME,
    bucket: options.bucket ?? 'memory',
    flags: { conditionalWrites: conditional },
    objects,
    async read(key) {
      const o = objects.get(key);
      return o ? { ...o, body: new Uint8Array(o.body) } : null;
    },
    async head(key) {
      const o = objects.get(key);
      return o ? { etag: o.etag, lastModified: o.lastModified, size: o.body.length } : null;
    },
    async write(key, body, w: WriteOptions = {}) {
      const current = objects.get(key);
      if (conditional) {
        if (w.ifNoneMatch === '*' && current) throw new PreconditionFailed(key);
        if (w.ifMatch !== undefined && current?.etag !== w.ifMatch) throw new PreconditionFailed(key);
      }
      const etag = `"${createHash('md5').update(body).update(String(now())).update(String(Math.random())).digest('hex')}"`;
      objects.set(key, { body: new Uint8Array(body), etag, lastModified: new Date(now()) });
      return { etag };
    },
    async list(prefix) {
      return [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    },
    async remove(keys) {
      for (const k of keys) objects.delete(k);
    },
    async ensureBucket() {
      exists = true;
    },
    async deleteBucket() {
      if (objects.size) throw new Error(`bucket "${options.bucket ?? 'memory'}" is not empty`);
      exists = false;
    },
    async bucketExists() {
      return exists;
    },
    now,
  };
}
