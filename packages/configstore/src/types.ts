/** The storage driver interface under the ConfigStore: plain objects in one bucket. */

export interface StoredObject {
  body: Uint8Array;
  /** Entity tag as the backend returns it (quoted). */
  etag: string;
  lastModified: Date;
}

export interface ObjectMeta {
  etag: string;
  lastModified: Date;
  size: number;
}

export interface WriteOptions {
  contentType?: string;
  /** `'*'`: write only if the key does not exist (S3 `If-None-Match: *`). */
  ifNoneMatch?: '*';
  /** Write only if the current object has this entity tag (S3 `If-Match`). */
  ifMatch?: string;
}

/** Capability flags of a driver (convention: flags, not instanceof). */
export interface DriverFlags {
  /**
   * Whether the backend honours `If-None-Match`/`If-Match` on writes: `true`/`false` when known,
   * `'detect'` to probe at runtime on first need.
   */
  conditionalWrites: boolean | 'detect';
}

/** One bucket of objects. Absent is not an error (`null`); transport and permission failures throw. */
export interface ObjectDriver {
  readonly name: string;
  readonly bucket: string;
  readonly flags: DriverFlags;
  read(key: string): Promise<StoredObject | null>;
  head(key: string): Promise<ObjectMeta | null>;
  /** Throws `PreconditionFailed` when a condition does not hold. */
  write(key: string, body: Uint8Array, options?: WriteOptions): Promise<{ etag: string }>;
  /** Every key under `prefix`, across all pages, in lexical order. */
  list(prefix: string): Promise<string[]>;
  /** Deletes keys (absent ones are fine), in batches the backend accepts. */
  remove(keys: string[]): Promise<void>;
  /** Creates the bucket when it does not exist. */
  ensureBucket(): Promise<void>;
  /** Deletes the (empty) bucket; an absent bucket is fine. */
  deleteBucket(): Promise<void>;
  /** True when the bucket exists and is reachable with these credentials. */
  bucketExists(): Promise<boolean>;
  /** The backend's idea of "now" in ms since the epoch (to compare with `lastModified` without clock skew). */
  now(): number;
  dispose?(): Promise<void>;
}
