/**
 * Temporal backups of a webroot and a MariaDB database to S3, done right:
 *
 * - **Streamed**: `tar` / `mariadb-dump` -> gzip -> (encryption) -> multipart upload
 *   (@aws-sdk/lib-storage); memory stays flat (part size x queue size), nothing is staged on disk.
 * - **Unique keys**: `<prefix><period>/<id>/<part>`; a new backup never overwrites an old one.
 * - **Verified**: tar must exit 0 and the dump must end with mariadb-dump's own `-- Dump completed`
 *   line as they stream; then each part is read back and its size and SHA-256 compared (and the
 *   stored dump's last line checked again).
 * - **Manifest last**: written only after verification; without it a backup does not exist.
 * - **Rotation after**: older generations are deleted only once a new one is verified, so a
 *   failed backup never removes a good one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { parallelGzip } from './parallel-gzip.ts';
import { execa } from 'execa';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { AdtError, UNTRUSTED_EXTRACT, errorFactory, lastLines, makeInert } from '@adt/core';
import { decryptStream, encryptStream } from './crypto-stream.ts';
import { PERIODS, isPeriod, type Manifest, type PartInfo, type PartKind, type Period } from './types.ts';

const fail = errorFactory('backup');

export interface BackupsOptions {
  /** Client of the backup bucket's endpoint. */
  client: S3Client;
  /** The backup bucket (not the config bucket, which a new build empties). */
  bucket: string;
  /** Key prefix (default `backups/`). */
  prefix?: string;
  /** 32-byte key for client-side encryption; absent: parts are stored compressed only. */
  encryptionKey?: Uint8Array;
  /**
   * Multipart part size in bytes (default and minimum 5 MiB, S3's minimum). S3 allows 10,000 parts,
   * so one part of a backup can be at most 10,000 x partSize (about 48 GiB by default): raise it for more.
   */
  partSize?: number;
  /** Parts uploaded at once (default 2): memory is about partSize x queueSize. */
  queueSize?: number;
  /** Recorded in manifests. */
  hostname: string;
  now?: () => Date;
}

export interface WebrootSource {
  kind: 'webroot';
  dir: string;
  /** tar --exclude patterns, relative to the webroot (e.g. `wp-config.php`, `wp-content/cache`). */
  exclude?: string[];
  /** Follow links (tar --dereference): a link to a mounted store (shared uploads) is archived as its content. */
  dereference?: boolean;
}

export interface DatabaseSource {
  kind: 'database';
  engine: 'mariadb';
  /** Option file the client logs in with (the server's own, for root over the socket, or a 0600 client file). */
  defaultsFile: string;
  database: string;
}

export type Source = WebrootSource | DatabaseSource;

export interface CreateMeta {
  app?: string;
  /** Rewrites a part's raw stream before it is compressed, checked and stored (e.g. a baseline's dump). */
  transform?: Partial<Record<PartKind, () => Transform>>;
  /** Checks run on the raw stream of a part while it uploads; a throw fails the backup (no manifest). */
  inspect?: Partial<Record<PartKind, (plain: Readable) => Promise<void>>>;
}

export interface RestoreTargets {
  webroot?: { dir: string };
  database?: { defaultsFile: string; database: string };
}

const PART_NAMES: Record<PartKind, string> = { webroot: 'webroot.tar.gz', database: 'database.sql.gz' };
const DUMP_COMPLETED = /-- Dump completed( on [0-9: -]+)?\s*$/;

export class Backups {
  readonly #o: Required<Omit<BackupsOptions, 'encryptionKey'>> & { encryptionKey?: Uint8Array };

  constructor(options: BackupsOptions) {
    if (options.encryptionKey && options.encryptionKey.length !== 32)
      throw fail('BAD_KEY', 'encryptionKey must be 32 bytes', { exitCode: 2 });
    const partSize = options.partSize ?? 5 * 1024 * 1024;
    if (partSize < 5 * 1024 * 1024) throw fail('BAD_OPTION', 'partSize must be at least 5 MiB (the S3 minimum)', { exitCode: 2 });
    this.#o = { prefix: 'backups/', queueSize: 2, now: () => new Date(), ...options, partSize };
  }

  /**
   * Takes a backup of `sources` for `period`: streams, verifies, writes the manifest last.
   * On failure, removes what it uploaded and throws; earlier backups are untouched.
   */
  async create(period: Period, sources: Source[], meta: CreateMeta = {}): Promise<Manifest> {
    checkPeriod(period);
    if (sources.length === 0) throw fail('BAD_SOURCES', 'nothing to back up: give a webroot and/or a database', { exitCode: 2 });
    const now = this.#o.now();
    const id = `${now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
    const dir = `${this.#o.prefix}${period}/${id}/`;
    const parts: PartInfo[] = [];
    try {
      for (const source of sources) {
        const key = dir + PART_NAMES[source.kind];
        const argv = source.kind === 'webroot' ? tarArgv(source) : dumpArgv(source);
        const part = await this.#uploadFromProcess(source.kind, argv, key, meta.inspect?.[source.kind], meta.transform?.[source.kind]?.());
        parts.push(part);
        await this.#verify(part);
      }
      const manifest: Manifest = {
        format: 1,
        id,
        period,
        createdAt: now.toISOString(),
        sourceHost: this.#o.hostname,
        app: meta.app,
        engine: sources.some((s) => s.kind === 'database') ? 'mariadb' : undefined,
        encrypted: Boolean(this.#o.encryptionKey),
        parts,
        verifiedAt: this.#o.now().toISOString(),
      };
      // https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html
      await this.#o.client.send(
        new PutObjectCommand({
          Bucket: this.#o.bucket,
          Key: `${dir}manifest.json`,
          Body: JSON.stringify(manifest, null, 2),
          ContentType: 'application/json',
          IfNoneMatch: '*',
        }),
      );
      return manifest;
    } catch (e) {
      await this.#deleteUnder(dir).catch(() => {});
      throw e instanceof AdtError ? e : fail('BACKUP_FAILED', `${period} backup failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Complete (manifested) backups, newest first; of one period or all. */
  async list(period?: Period): Promise<Manifest[]> {
    if (period) checkPeriod(period);
    const keys = await this.#listKeys(`${this.#o.prefix}${period ? `${period}/` : ''}`);
    const manifests = await Promise.all(keys.filter((k) => k.endsWith('/manifest.json')).map((k) => this.#getJson<Manifest>(k)));
    return manifests
      .filter((m): m is Manifest => m !== null && m.format === 1)
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1));
  }

  /**
   * Keeps the newest `keep` complete backups of `period` and deletes older ones. Incomplete
   * uploads (no manifest) older than `orphanHours` are removed too; newer ones may be in progress.
   */
  async rotate(period: Period, keep: number, orphanHours = 24): Promise<{ kept: string[]; deleted: string[]; orphans: string[] }> {
    checkPeriod(period);
    if (!Number.isInteger(keep) || keep < 1 || keep > 1000)
      throw fail('BAD_OPTION', `keep ${keep}: keep 1-1000 generations (never none)`, { exitCode: 2 });
    const manifests = await this.list(period);
    const kept = manifests.slice(0, keep).map((m) => m.id);
    const deleted = manifests.slice(keep).map((m) => m.id);
    for (const id of deleted) await this.#deleteUnder(`${this.#o.prefix}${period}/${id}/`);
    const all = await this.#listKeys(`${this.#o.prefix}${period}/`);
    const complete = new Set(manifests.map((m) => m.id));
    const cutoff = this.#o.now().getTime() - orphanHours * 3600_000;
    const orphans = [...new Set(all.map((k) => k.slice(`${this.#o.prefix}${period}/`.length).split('/')[0]!))].filter(
      (id) => !complete.has(id) && idTime(id) < cutoff,
    );
    for (const id of orphans) await this.#deleteUnder(`${this.#o.prefix}${period}/${id}/`);
    return { kept, deleted, orphans };
  }

  /** Backup then rotation: the rotation runs only when the new backup was verified. */
  async backupAndRotate(
    period: Period,
    sources: Source[],
    keep: number,
    meta: CreateMeta = {},
  ): Promise<{ manifest: Manifest; deleted: string[] }> {
    const manifest = await this.create(period, sources, meta);
    const { deleted } = await this.rotate(period, keep);
    return { manifest, deleted };
  }

  /** The backup to restore: by id, or the newest of a period. */
  async find(selector: { id: string } | { period: Period }): Promise<Manifest> {
    if ('id' in selector) {
      const m = (await this.list()).find((x) => x.id === selector.id);
      if (!m) throw fail('NOT_FOUND', `no complete backup with id "${selector.id}" (see list)`, { exitCode: 2 });
      return m;
    }
    const [latest] = await this.list(selector.period);
    if (!latest) throw fail('NOT_FOUND', `no complete ${selector.period} backup`, { exitCode: 2 });
    return latest;
  }

  /**
   * Restores a backup. The webroot is extracted next to the target and swapped in only when its
   * checksum matched; the database part is checksummed in full before anything is loaded.
   */
  async restore(manifest: Manifest, targets: RestoreTargets, options: { transform?: { database?: () => Transform } } = {}): Promise<void> {
    if (manifest.encrypted && !this.#o.encryptionKey)
      throw fail('NO_KEY', `backup ${manifest.id} is encrypted: give the backup key to restore it`, { exitCode: 2 });
    for (const part of manifest.parts) {
      if (part.kind === 'webroot' && targets.webroot) await this.#restoreWebroot(part, targets.webroot.dir);
      if (part.kind === 'database' && targets.database) {
        await this.#verify(part);
        const db = targets.database;
        const rewrite = options.transform?.database?.();
        await this.#streamPart(part, true, (plain) => {
          if (rewrite) plain.on('error', (e) => rewrite.destroy(e));
          return runWithStdin(restoreArgv(db), rewrite ? plain.pipe(rewrite) : plain);
        });
      }
    }
  }

  // --- Internal helpers ---

  async #uploadFromProcess(
    kind: PartKind,
    argv: string[],
    key: string,
    inspect?: (plain: Readable) => Promise<void>,
    rewrite?: Transform,
  ): Promise<PartInfo> {
    const child = execa(argv[0]!, argv.slice(1), { buffer: false, stdin: 'ignore', reject: false });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 4000) stderr += d.toString();
    });
    let rawSize = 0;
    let tail = '';
    // The inspector (e.g. a secret scan) reads the same raw bytes as they stream past.
    const inspector = inspect ? new PassThrough() : undefined;
    const inspected = inspector && inspect ? inspect(inspector) : Promise.resolve();
    const raw = new Transform({
      transform(chunk: Buffer, _e, cb) {
        rawSize += chunk.length;
        if (kind === 'database') tail = (tail + chunk.toString('latin1')).slice(-200);
        if (inspector && !inspector.destroyed && !inspector.write(chunk)) inspector.once('drain', () => cb(null, chunk));
        else cb(null, chunk);
      },
      flush(cb) {
        inspector?.end();
        cb();
      },
    });
    const stored = hashMeter();
    const body = new PassThrough();
    const upload = new Upload({
      client: this.#o.client,
      params: { Bucket: this.#o.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' },
      partSize: this.#o.partSize,
      queueSize: this.#o.queueSize,
      leavePartsOnError: false,
    });
    const stages: (Readable | Transform | PassThrough)[] = [child.stdout!, ...(rewrite ? [rewrite] : []), raw, parallelGzip()];
    if (this.#o.encryptionKey) stages.push(encryptStream(this.#o.encryptionKey));
    stages.push(stored.stream, body);
    // Any stage failing stops the others (no producer left writing into a stream nobody reads),
    // and we wait for all of them to settle, so nothing lands in the bucket after our cleanup.
    const stopAll = (e: unknown) => {
      body.destroy(e as Error);
      inspector?.destroy();
      child.kill();
      void upload.abort().catch(() => {});
    };
    const outcomes = await Promise.allSettled([
      upload.done().catch((e: unknown) => (stopAll(e), Promise.reject(e))),
      pipeline(stages as unknown as [Readable, ...Transform[]]).catch((e: unknown) => (stopAll(e), Promise.reject(e))),
      inspected.catch((e: unknown) => (stopAll(e), Promise.reject(e))),
    ]);
    const firstFailure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (firstFailure) {
      await child.catch(() => {});
      // The inspector's verdict (e.g. secrets found) explains the failure best.
      const verdict = outcomes[2]!.status === 'rejected' ? outcomes[2].reason : firstFailure.reason;
      throw verdict;
    }
    const result = await child;
    const what = kind === 'webroot' ? 'archiving the webroot' : 'dumping the database';
    if (result.exitCode !== 0) throw fail('SOURCE_FAILED', `${what} failed (${argv[0]} exit ${result.exitCode}): ${lastLines(stderr, 2)}`);
    if (kind === 'database' && !DUMP_COMPLETED.test(tail))
      throw fail('DUMP_INCOMPLETE', 'the dump does not end with mariadb-dump\'s "-- Dump completed" line');
    return { kind, key, ...stored.result(), rawSize };
  }

  /**
   * Reads a part back and compares size and SHA-256 of the stored bytes with what was uploaded. The
   * content was checked while it streamed (tar's exit status, the dump's completion line); for a
   * database part the stored dump's last line is checked again, which also proves it decrypts.
   */
  async #verify(part: PartInfo): Promise<void> {
    if (part.kind === 'database') {
      await this.#streamPart(part, true, async (plain) => {
        let tail = '';
        await pipeline(
          plain,
          new Writable({
            write(chunk: Buffer, _e, cb) {
              tail = (tail + chunk.toString('latin1')).slice(-200);
              cb();
            },
          }),
        );
        if (!DUMP_COMPLETED.test(tail)) throw fail('VERIFY_FAILED', `${part.key}: the stored dump is incomplete`);
      });
    } else {
      await this.#streamPart(part, false, (stored) => pipeline(stored, new Writable({ write: (_c, _e, cb) => cb() })));
    }
  }

  /**
   * Streams a part's stored bytes through the checksum and decryption (and gunzip when `gunzip`) into
   * `consume`; throws when size or checksum differ from the manifest.
   */
  async #streamPart(part: PartInfo, gunzip: boolean, consume: (data: Readable) => Promise<void>): Promise<void> {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
    const res = await this.#o.client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key: part.key }));
    const meter = hashMeter();
    const stages: (Readable | Transform)[] = [res.Body as Readable, meter.stream];
    if (this.#o.encryptionKey) stages.push(decryptStream(this.#o.encryptionKey));
    if (gunzip) stages.push(createGunzip());
    const out = new PassThrough();
    await Promise.all([pipeline([...stages, out] as unknown as [Readable, ...Transform[]]), consume(out)]);
    const { size, sha256 } = meter.result();
    if (size !== part.size || sha256 !== part.sha256) {
      throw fail(
        'VERIFY_FAILED',
        `${part.key}: stored ${size} bytes with SHA-256 ${sha256.slice(0, 12)}..., ` +
          `the manifest says ${part.size} bytes, ${part.sha256.slice(0, 12)}...`,
      );
    }
  }

  async #restoreWebroot(part: PartInfo, dir: string): Promise<void> {
    const staging = `${dir}.adt-restore-${randomBytes(3).toString('hex')}`;
    await mkdir(staging, { recursive: true, mode: 0o700 });
    try {
      // tar decompresses in its own process, in parallel with our checksum. The archive is not
      // trusted: no owners from it, and the tree is made inert (or refused) before it is swapped in.
      await this.#streamPart(part, false, (gz) =>
        runWithStdin(['tar', '--extract', '--gzip', '--file', '-', '--directory', staging, ...UNTRUSTED_EXTRACT], gz),
      );
      await makeInert(staging, `backup ${part.key}`);
      await chmod(staging, 0o755);
      const old = `${dir}.adt-old-${randomBytes(3).toString('hex')}`;
      let before = 'renamed' as 'renamed' | 'absent' | 'fixed';
      await rename(dir, old).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') before = 'absent';
        // A mount point, or a directory of an overlay's lower layer (EXDEV), cannot be renamed.
        else if (e.code === 'EXDEV' || e.code === 'EBUSY') before = 'fixed';
        else throw e;
      });
      if (before === 'fixed') {
        // The verified tree replaces what is inside the directory instead (not atomic, but nothing
        // is removed before the backup was read and checked in full).
        for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
        // The staging tree may be on another filesystem (a mount point's parent): copy, keeping
        // owners, modes, links and times (and the top directory's own).
        const r = await execa('cp', ['-a', '--', `${staging}/.`, `${dir}/`], { reject: false });
        if (r.exitCode !== 0) throw fail('RESTORE_FAILED', `copying the restored files into ${dir} failed: ${lastLines(r.stderr, 2)}`);
        await rm(staging, { recursive: true, force: true });
      } else {
        await rename(staging, dir);
        if (before === 'renamed') await rm(old, { recursive: true, force: true });
      }
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw e;
    }
  }

  async #listKeys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const r = await this.#o.client.send(new ListObjectsV2Command({ Bucket: this.#o.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of r.Contents ?? []) if (o.Key) out.push(o.Key);
      if (!r.IsTruncated || !r.NextContinuationToken) break;
      token = r.NextContinuationToken;
    }
    return out;
  }

  async #getJson<T>(key: string): Promise<T | null> {
    try {
      const r = await this.#o.client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key: key }));
      return JSON.parse(await r.Body!.transformToString()) as T;
    } catch {
      return null;
    }
  }

  async #deleteUnder(prefix: string): Promise<void> {
    const keys = await this.#listKeys(prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      await this.#o.client.send(
        new DeleteObjectsCommand({
          Bucket: this.#o.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
        }),
      );
    }
  }
}

// --- Internal helpers ---

/** A pass-through that counts bytes and hashes them (SHA-256) as they go by. */
function hashMeter(): { stream: Transform; result(): { size: number; sha256: string } } {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, result: () => ({ size, sha256: hash.digest('hex') }) };
}

function checkPeriod(period: string): asserts period is Period {
  if (!isPeriod(period)) throw fail('BAD_PERIOD', `period "${period}": use one of ${PERIODS.join(', ')}`, { exitCode: 2 });
}

function idTime(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(id);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : 0;
}

/** tar of the webroot's content, streamed to stdout, owners kept numerically. */
export function tarArgv(s: WebrootSource): string[] {
  return [
    'tar',
    '--create',
    '--file',
    '-',
    '--directory',
    s.dir,
    '--numeric-owner',
    ...(s.dereference ? ['--dereference'] : []),
    ...(s.exclude ?? []).map((p) => `--exclude=./${p.replace(/^\.?\//, '')}`),
    '.',
  ];
}

/** A consistent InnoDB dump without locking the site (--single-transaction), with routines and triggers. */
export function dumpArgv(s: DatabaseSource): string[] {
  return [
    'mariadb-dump',
    `--defaults-file=${s.defaultsFile}`,
    '--single-transaction',
    '--quick',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--default-character-set=utf8mb4',
    s.database,
  ];
}

/**
 * The client a dump is loaded with. A dump is not trusted: --sandbox refuses the client's own
 * commands that reach the file system or a shell (`\!`, `source`, `tee`, `pager`), and
 * --local-infile=0 refuses LOAD DATA LOCAL (the client reading this machine's files for the server).
 */
export function restoreArgv(db: { defaultsFile: string; database: string }): string[] {
  return ['mariadb', `--defaults-file=${db.defaultsFile}`, '--sandbox', '--local-infile=0', db.database];
}

/** Resolves when a writable drains or closes, leaving no listener behind. */
function drainOrClose(w: NodeJS.WritableStream & { once: NodeJS.EventEmitter['once']; off: NodeJS.EventEmitter['off'] }): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.once('drain', done);
    w.once('close', done);
  });
}

/**
 * Runs a command with `input` on stdin; fails with its stderr on a non-zero exit. The input is read
 * to its end even when the command stops reading early (tar stops at its end-of-archive blocks), so
 * the checksum upstream covers every byte; an error of the input stream is thrown, never swallowed.
 */
async function runWithStdin(argv: string[], input: Readable, discardStdout = false): Promise<void> {
  const child = execa(argv[0]!, argv.slice(1), {
    stdin: 'pipe',
    stdout: discardStdout ? 'ignore' : 'pipe',
    reject: false,
    maxBuffer: 10 * 1024 * 1024,
  });
  const stdin = child.stdin!;
  stdin.on('error', () => {}); // EPIPE once the command has stopped reading: the rest is drained below
  const feed = async () => {
    for await (const chunk of input) {
      if (stdin.destroyed || stdin.writableEnded) continue;
      if (!stdin.write(chunk)) await drainOrClose(stdin);
    }
    if (!stdin.destroyed) stdin.end();
  };
  const [r] = await Promise.all([
    child,
    feed().catch((e: unknown) => {
      child.kill();
      throw e;
    }),
  ]);
  if (r.exitCode !== 0) throw fail('RESTORE_FAILED', `${argv[0]} failed (exit ${r.exitCode}): ${lastLines(String(r.stderr), 2)}`);
}
