/**
 * The role bundle: what a server needs of the toolkit, in one checksummed tarball the build
 * publishes to the deployment's bucket and every server's user-data fetches (see @adt/launch).
 *
 *   dist/<role>.mjs (+ shared chunks, source maps)   each role's program, bundled with its
 *                                                   dependencies by esbuild (no node_modules)
 *   roles/common/bin/adt-run                          the one launcher of every command
 *   roles/<role>/...                                  the commands with the original's names
 *                                                   (bootstrap, SetupFirewall, Backup,
 *                                                   PutToConfigDatastore...): links to adt-run
 *   BUNDLE.json                                      what it holds: toolkit version, roles, inputs' hash
 *
 * The tarball is reproducible (names sorted, times, owners and gzip header fixed): the same code
 * makes the same bytes, so its SHA-256 is its identity. Built bundles are cached by the hash of
 * their inputs (sources, lockfile, command links), so a deploy that changed nothing builds nothing.
 * Node itself is not in it: it comes as the runtime artifact (`runtime.ts`).
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';
import { errorFactory, execaRunner, outputTail } from '@adt/core';

const fail = errorFactory('bundle');

/** The roles a server can have: each gets its program in the bundle. */
export const SERVER_ROLES = ['webserver', 'database', 'autoscaler', 'auth'] as const;
/** Programs in the bundle: the server roles' and roles/common's own. */
const PROGRAMS = [...SERVER_ROLES, 'common'] as const;
const LAUNCHER = 'roles/common/bin/adt-run';
/** Directories of a role that hold code or tests, not commands. */
const NOT_COMMANDS = new Set(['src', 'test', 'bench', 'node_modules', '.turbo']);

export interface BundleOptions {
  /** The toolkit's checkout (roles/, packages/, node_modules/, package-lock.json). */
  root: string;
  /** Where built bundles are kept, by the hash of their inputs (created 0700). */
  cacheDir: string;
  /** Text written into BUNDLE.json (it changes the bundle's id: a marker for tests, a release note). */
  note?: string;
}

export interface Bundle {
  /** SHA-256 of the tarball: the bundle's identity. */
  sha256: string;
  /** The tarball on this machine. */
  file: string;
  bytes: number;
  /** The toolkit's version (package.json) and the inputs' hash. */
  version: string;
  inputs: string;
  roles: readonly string[];
  /** Seconds the build took (0 when it came from the cache). */
  seconds: number;
  cached: boolean;
}

// --- Internal helpers ---

/** A symbolic link; one already there (the same link reached twice) is fine. */
async function link(target: string, path: string): Promise<void> {
  await symlink(target, path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules' || name === '.turbo') continue;
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/** The command links of a role: [path relative to the checkout, link target] for every link under roles/<role>/ outside src, test... */
function commandLinks(root: string, role: string): [string, string][] {
  const out: [string, string][] = [];
  const visit = (dir: string) => {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const rel = join(dir, name);
      if (dir === join('roles', role) && NOT_COMMANDS.has(name)) continue;
      const st = lstatSync(join(root, rel));
      if (st.isSymbolicLink()) out.push([rel, readlinkSync(join(root, rel))]);
      else if (st.isDirectory()) visit(rel);
    }
  };
  visit(join('roles', role));
  return out;
}

/** The links to copy for every program: each must end at the launcher (or be a directory of such links). */
function allLinks(root: string): [string, string][] {
  const links: [string, string][] = [];
  for (const p of PROGRAMS) links.push(...commandLinks(root, p));
  const launcher = realpathSync(join(root, LAUNCHER));
  for (const [rel] of links) {
    const real = realpathSync(join(root, rel));
    const ok =
      real === launcher || (statSync(real).isDirectory() && readdirSync(real).every((n) => realpathSync(join(real, n)) === launcher));
    if (!ok)
      throw fail('BAD_COMMAND', `${rel} is a link that does not lead to ${LAUNCHER}: every command of a role is a link to the launcher`);
  }
  return links;
}

/**
 * The hash of everything a bundle is made from: the sources of every workspace, the lockfile,
 * the launcher, the command links and the note. Cheap (no bundling): the cache's key.
 */
export function bundleInputHash(o: Pick<BundleOptions, 'root' | 'note'>): string {
  const h = createHash('sha256');
  const files = [join(o.root, 'package-lock.json'), join(o.root, LAUNCHER)];
  for (const top of ['packages', 'roles']) {
    for (const ws of readdirSync(join(o.root, top)).sort()) {
      const src = join(o.root, top, ws, 'src');
      if (existsSync(src)) files.push(...walk(src));
      if (existsSync(join(o.root, top, ws, 'package.json'))) files.push(join(o.root, top, ws, 'package.json'));
    }
  }
  for (const f of files) h.update(relative(o.root, f)).update('\0').update(readFileSync(f)).update('\0');
  for (const [rel, target] of allLinks(o.root)) h.update(`${rel} -> ${target}\n`);
  h.update(`note:${o.note ?? ''}`);
  return h.digest('hex').slice(0, 24);
}

/** Builds the bundle (or takes it from the cache when its inputs did not change). */
export async function buildBundle(o: BundleOptions): Promise<Bundle> {
  const started = Date.now();
  const inputs = bundleInputHash(o);
  const version = (JSON.parse(readFileSync(join(o.root, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  await mkdir(o.cacheDir, { recursive: true, mode: 0o700 });
  const cached = join(o.cacheDir, `bundle-${inputs}.tar.gz`);
  const describe = async (file: string, seconds: number, fromCache: boolean): Promise<Bundle> => {
    const bytes = await readFile(file);
    return {
      sha256: createHash('sha256').update(bytes).digest('hex'),
      file,
      bytes: bytes.length,
      version,
      inputs,
      roles: SERVER_ROLES,
      seconds,
      cached: fromCache,
    };
  };
  if (existsSync(cached)) return describe(cached, 0, true);

  const work = await mkdtemp(join(tmpdir(), 'adt-bundle-'));
  try {
    const out = join(work, 'tree');
    // https://esbuild.github.io/api/#build: one ESM program per role, shared code in chunks.
    const result = await build({
      absWorkingDir: o.root,
      entryPoints: Object.fromEntries(PROGRAMS.map((p) => [p, join(o.root, 'roles', p, 'src', 'program.ts')])),
      outdir: join(out, 'dist'),
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'linked',
      sourcesContent: false,
      chunkNames: 'chunks/[name]-[hash]',
      outExtension: { '.js': '.mjs' },
      // CommonJS dependencies that require() Node's modules need a `require` in ESM output.
      banner: {
        js: "import { createRequire as __adtCreateRequire } from 'node:module'; const require = __adtCreateRequire(import.meta.url);",
      },
      logLevel: 'silent',
      metafile: false,
    }).catch((e: Error) => {
      throw fail('BUNDLE_FAILED', `esbuild could not bundle the roles' programs: ${e.message.split('\n').slice(0, 6).join(' | ')}`);
    });
    if (result.errors.length) throw fail('BUNDLE_FAILED', `esbuild: ${result.errors.map((e) => e.text).join('; ')}`);
    await mkdir(join(out, 'roles/common/bin'), { recursive: true });
    await copyFile(join(o.root, LAUNCHER), join(out, LAUNCHER));
    await chmod(join(out, LAUNCHER), 0o755);
    for (const [rel, target] of allLinks(o.root)) {
      await mkdir(dirname(join(out, rel)), { recursive: true });
      await link(target, join(out, rel));
      // A linked directory (providerscripts/datastore/configwrapper): its links come along.
      const real = realpathSync(join(o.root, rel));
      if (statSync(real).isDirectory()) {
        const dir = relative(o.root, real);
        await mkdir(join(out, dir), { recursive: true });
        for (const n of readdirSync(real).sort()) {
          await link(readlinkSync(join(real, n)), join(out, dir, n));
        }
      }
    }
    const manifest = {
      name: 'adt-role-bundle',
      version,
      inputs,
      roles: SERVER_ROLES,
      programs: PROGRAMS,
      ...(o.note ? { note: o.note } : {}),
    };
    await writeFile(join(out, 'BUNDLE.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const tarball = join(work, 'bundle.tar.gz');
    const run = execaRunner({ timeoutMs: 120_000 });
    const tar = await run.run(
      [
        'sh',
        '-c',
        // Reproducible: sorted names, fixed times and owners, gzip without a name or time (-n).
        'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=go-w -C "$1" -cf - . | gzip -n -6 > "$2"',
        'tar',
        out,
        tarball,
      ],
      { nothrow: true },
    );
    if (tar.exitCode !== 0) throw fail('BUNDLE_FAILED', `packing the bundle failed: ${outputTail(tar)}`);
    await rename(tarball, cached).catch(async () => {
      await copyFile(tarball, cached);
    });
    return describe(cached, Number(((Date.now() - started) / 1000).toFixed(1)), false);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
