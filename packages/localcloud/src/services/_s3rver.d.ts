// Minimal types for s3rver 3.x (it ships none): only what s3.ts uses.
declare module 's3rver' {
  import type { Server } from 'node:http';
  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory: string;
    resetOnClose?: boolean;
    configureBuckets?: { name: string; configs?: unknown[] }[];
  }
  interface KoaContext {
    method: string;
    path: string;
    query: Record<string, string | undefined>;
    status: number;
    body: unknown;
    type: string;
    get(header: string): string;
    set(header: string, value: string): void;
    store: FilesystemStore;
  }
  interface FilesystemStore {
    getResourcePath(bucket: string, key?: string, resource?: string): string;
    getMetadata(bucket: string, key: string): Promise<Record<string, string> & { etag: string }>;
    putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5: string): Promise<void>;
    getBucket(bucket: string): Promise<unknown>;
    listObjects(
      bucket: string,
      options: { prefix?: string; startAfter?: string; maxKeys?: number; delimiter?: string },
    ): Promise<{
      objects: { key: string; lastModifiedDate: Date; metadata: Record<string, string>; size: number }[];
      commonPrefixes: string[];
      isTruncated: boolean;
    }>;
    putObject(object: {
      bucket: string;
      key: string;
      content: Buffer | NodeJS.ReadableStream;
      metadata: Record<string, unknown>;
    }): Promise<{ size: number; md5: string }>;
  }
  type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
  export default class S3rver {
    constructor(options: S3rverOptions);
    store: FilesystemStore;
    middleware: Middleware[];
    httpServer?: Server;
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
