/**
 * The local cloud's images: what its servers boot from, as a cloud's image library.
 *
 * - The **stock image** `debian-12` is a minimal Debian 12 root filesystem built once per machine
 *   from Debian's archive with mmdebstrap (through the cloud's package mirror), with what a cloud's
 *   stock Debian image carries that our servers rely on (openssh-server, cron, curl,
 *   ca-certificates, iproute2, procps) and tini, the local cloud's PID 1. About 30 s.
 * - A **snapshot** is a stopped server's own changes (its overlay's upper directory) on top of the
 *   image it booted from: a layer. A server booted from a snapshot mounts its layers and the stock
 *   root filesystem under its own upper directory (overlayfs, several lower directories).
 *
 * Images live in `dir` (default /var/cache/adt-local/images), shared by every local cloud of the
 * machine, so a test suite or a second deploy does not build them again:
 *
 *   <dir>/<id>/image.json   { id, name, kind, parent, createdAt, bytes, recipe }
 *   <dir>/<id>/rootfs/      a stock image's root filesystem
 *   <dir>/<id>/layer/       a snapshot's changes
 *
 * Builds and snapshots are serialised across processes with flock(1) on `<dir>/.lock`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorFactory, execaRunner, outputTail, type Argv, type Runner } from '@adt/core';

const fail = errorFactory('localcloud', 'images');

export const DEFAULT_IMAGE_DIR = '/var/cache/adt-local/images';

/** The name servers ask for when they name no image. */
export const STOCK_IMAGE = 'debian-12';

/**
 * What the stock image is made of. Its hash is part of the image's id, so changing the recipe
 * makes a new image instead of reusing an old one.
 */
export const STOCK_RECIPE = {
  suite: 'bookworm',
  variant: 'minbase',
  /** What a cloud's stock Debian 12 image has that the toolkit's servers use; tini is the local cloud's own (PID 1). */
  packages: ['openssh-server', 'cron', 'curl', 'ca-certificates', 'iproute2', 'procps', 'netbase', 'less', 'tini'],
  sources: [
    'deb http://deb.debian.org/debian bookworm main',
    'deb http://deb.debian.org/debian bookworm-updates main',
    'deb http://deb.debian.org/debian-security bookworm-security main',
  ],
  /** Bumped when the customisation below changes. */
  customisation: 2,
} as const;

export interface ImageRecord {
  /** Unique id (`debian-12-<recipe hash>`, or `snap-<random>`). */
  id: string;
  /** What it was asked by: `debian-12`, or the snapshot's name. */
  name: string;
  kind: 'stock' | 'snapshot';
  /** The image a snapshot was taken on (null for a stock image). */
  parent: string | null;
  createdAt: string;
  /** Size on disk of its own files (not its parents'). */
  bytes: number;
  /** The stock recipe's hash (stock images). */
  recipe?: string;
  /** The server a snapshot was taken of. */
  from?: string;
}

export interface ImageStoreOptions {
  dir?: string;
  runner?: Runner;
}

function recipeHash(): string {
  return createHash('sha256').update(JSON.stringify(STOCK_RECIPE)).digest('hex').slice(0, 10);
}

// --- Internal helpers ---

const ID = /^[a-z0-9][a-z0-9.-]{0,62}$/;

async function duBytes(run: Runner, path: string): Promise<number> {
  const r = await run.run(['du', '-sb', path], { nothrow: true, timeoutMs: 120_000 });
  return Number(r.stdout.split('\t')[0]) || 0;
}

export class ImageStore {
  readonly dir: string;
  readonly #run: Runner;
  #stockBuild: Promise<ImageRecord> | null = null;

  constructor(o: ImageStoreOptions = {}) {
    this.dir = o.dir ?? DEFAULT_IMAGE_DIR;
    this.#run = o.runner ?? execaRunner({ timeoutMs: 900_000 });
  }

  /** The stock image's id for the current recipe. */
  get stockId(): string {
    return `${STOCK_IMAGE}-${recipeHash()}`;
  }

  /** Whether `ref` names the stock image (its name, or its id, known before it is built). */
  isStock(ref: string): boolean {
    return ref === STOCK_IMAGE || ref === this.stockId;
  }

  async list(): Promise<ImageRecord[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: ImageRecord[] = [];
    for (const n of names.sort()) {
      if (!ID.test(n)) continue;
      const r = await this.#read(n);
      if (r) out.push(r);
    }
    return out;
  }

  /**
   * The image `ref` names: an id, or a name (`debian-12` is the current stock recipe's; a
   * snapshot's name gives its newest). Null when absent (the stock one may not be built yet).
   */
  async get(ref: string): Promise<ImageRecord | null> {
    if (ref === STOCK_IMAGE) return this.#read(this.stockId);
    const byId = ID.test(ref) ? await this.#read(ref) : null;
    if (byId) return byId;
    const named = (await this.list()).filter((i) => i.name === ref).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return named[0] ?? null;
  }

  /** The lower directories (topmost first) of a server booted from image `id`. */
  async layers(id: string): Promise<string[]> {
    const out: string[] = [];
    let current: ImageRecord | null = await this.#read(id);
    for (let depth = 0; current && depth < 16; depth++) {
      out.push(join(this.dir, current.id, current.kind === 'stock' ? 'rootfs' : 'layer'));
      if (current.kind === 'stock') return out;
      current = current.parent ? await this.#read(current.parent) : null;
    }
    throw fail('BROKEN_IMAGE', `image ${id} has a missing parent (or more than 16 layers) in ${this.dir}: delete it and build it again`);
  }

  /**
   * The stock image, built first when this machine has none (about 30 s; `onProgress` sees
   * mmdebstrap's lines). `aptProxy` is the package mirror the build downloads through.
   */
  ensureStock(aptProxy: string | null, onProgress: (line: string) => void = () => {}): Promise<ImageRecord> {
    this.#stockBuild ??= this.#buildStock(aptProxy, onProgress).finally(() => {
      this.#stockBuild = null;
    });
    return this.#stockBuild;
  }

  async #buildStock(aptProxy: string | null, onProgress: (line: string) => void): Promise<ImageRecord> {
    const id = this.stockId;
    const existing = await this.#read(id);
    if (existing) return existing;
    if (!existsSync('/usr/bin/mmdebstrap')) {
      throw fail('NOT_INSTALLED', '/usr/bin/mmdebstrap is missing: install the Debian package mmdebstrap (scripts/setup.sh does)', {
        exitCode: 2,
      });
    }
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const work = join(this.dir, `.build-${id}-${randomBytes(3).toString('hex')}`);
    const rootfs = join(work, 'rootfs');
    // One build at a time on the machine: a second process waits on the lock, then finds it built.
    const script = [
      'set -eu',
      `if [ -e ${join(this.dir, id, 'image.json')} ]; then exit 0; fi`,
      `mkdir -p ${work}`,
      [
        'mmdebstrap',
        `--variant=${STOCK_RECIPE.variant}`,
        `--include=${STOCK_RECIPE.packages.join(',')}`,
        ...(aptProxy ? [`--aptopt='Acquire::http::Proxy "${aptProxy}"'`] : []),
        // Cloud images ship without host keys or a machine id: each server makes its own at first boot.
        `--customize-hook='rm -f "$1"/etc/ssh/ssh_host_* "$1"/etc/apt/apt.conf.d/99mmdebstrap "$1"/etc/hostname'`,
        `--customize-hook=': > "$1"/etc/machine-id; mkdir -p "$1"/var/lib/cloud "$1"/opt'`,
        STOCK_RECIPE.suite,
        rootfs,
        ...STOCK_RECIPE.sources.map((s) => `'${s}'`),
      ].join(' '),
      `mv ${work} ${join(this.dir, id)}`,
    ].join('\n');
    onProgress(`building the local cloud's stock image ${STOCK_IMAGE} (${id}) from Debian's archive: once per machine, about 30 s`);
    const r = await this.#run.run(['flock', join(this.dir, '.lock'), 'sh', '-c', script], { nothrow: true, timeoutMs: 900_000 });
    if (r.exitCode !== 0) {
      await rm(work, { recursive: true, force: true });
      throw fail(
        'IMAGE_BUILD_FAILED',
        `building the stock image ${STOCK_IMAGE} with mmdebstrap failed (it downloads Debian 12 through the cloud's package mirror ` +
          `from deb.debian.org, which must be reachable once): ${outputTail(r, 6)}`,
      );
    }
    const record = await this.#read(id);
    if (record) return record;
    const made: ImageRecord = {
      id,
      name: STOCK_IMAGE,
      kind: 'stock',
      parent: null,
      createdAt: new Date().toISOString(),
      bytes: await duBytes(this.#run, join(this.dir, id, 'rootfs')),
      recipe: recipeHash(),
    };
    await writeFile(join(this.dir, id, 'image.json'), JSON.stringify(made, null, 2));
    onProgress(`stock image ${id} built (${(made.bytes / 1e6).toFixed(0)} MB)`);
    return made;
  }

  /**
   * A snapshot: a copy of `upperDir` (a stopped server's changes) as a layer over `parent`.
   * Named `name`; its id is new.
   */
  async snapshot(upperDir: string, name: string, parent: string, from: string): Promise<ImageRecord> {
    if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) {
      throw fail('BAD_NAME', `snapshot name "${name}": 1-63 lowercase letters, digits, ".", "_", "-"`, { exitCode: 2 });
    }
    if (!(await this.#read(parent))) throw fail('NOT_FOUND', `image ${parent} (the server's) is not in ${this.dir}`);
    const id = `snap-${randomBytes(5).toString('hex')}`;
    const work = join(this.dir, `.build-${id}`);
    await mkdir(work, { recursive: true });
    // cp -a keeps owners, modes, xattrs and overlayfs whiteouts (device 0/0 files): the layer means what the upper meant.
    const r = await this.#run.run(['cp', '-a', '--reflink=auto', upperDir, join(work, 'layer')] as unknown as Argv, {
      nothrow: true,
      timeoutMs: 900_000,
    });
    if (r.exitCode !== 0) {
      await rm(work, { recursive: true, force: true });
      throw fail('SNAPSHOT_FAILED', `copying ${upperDir} failed: ${outputTail(r)}`);
    }
    const made: ImageRecord = {
      id,
      name,
      kind: 'snapshot',
      parent,
      createdAt: new Date().toISOString(),
      bytes: await duBytes(this.#run, join(work, 'layer')),
      from,
    };
    await writeFile(join(work, 'image.json'), JSON.stringify(made, null, 2));
    await rename(work, join(this.dir, id));
    return made;
  }

  /** Deletes an image; refused while another image is built on it. Absent is not an error. */
  async delete(id: string, inUse: (id: string) => Promise<boolean> = async () => false): Promise<void> {
    const r = await this.#read(id);
    if (!r) return;
    const children = (await this.list()).filter((i) => i.parent === id);
    if (children.length)
      throw fail('IN_USE', `image ${id} is the parent of ${children.map((c) => c.id).join(', ')}: delete those first`, { exitCode: 2 });
    if (await inUse(id)) throw fail('IN_USE', `image ${id} is in use by a server of this cloud`, { exitCode: 2 });
    await rm(join(this.dir, id), { recursive: true, force: true });
  }

  async #read(id: string): Promise<ImageRecord | null> {
    try {
      return JSON.parse(await readFile(join(this.dir, id, 'image.json'), 'utf8')) as ImageRecord;
    } catch {
      return null;
    }
  }
}
