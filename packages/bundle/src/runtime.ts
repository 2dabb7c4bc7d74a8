/**
 * The runtime artifact: the Node that runs the bundle on servers. Debian 12's own nodejs is 18
 * (end of life upstream, and older than the toolkit's floor, Node 20), so servers get the build
 * machine's own Node 20 binary (the one running this code), checksummed like the bundle. It is
 * published once per Node version (the bundle changes far more often) and kept on prepared
 * images, so a server built from one skips the download.
 *
 *   node-v20.x.y-linux-x64/bin/node      the binary
 *   node-v20.x.y-linux-x64/VERSION       its version
 *   node-v20.x.y-linux-x64/LICENSE       Node's license, when the build machine has it
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorFactory, execaRunner, outputTail } from '@adt/core';

const fail = errorFactory('bundle', 'runtime');

export interface RuntimeOptions {
  /** Where built runtimes are kept (created 0700). */
  cacheDir: string;
  /** The Node binary (default: the one running this process). */
  nodeBinary?: string;
  /** Its version (default: this process's). */
  nodeVersion?: string;
  /** Its architecture (default: this process's); servers are x64 Debian. */
  arch?: string;
}

export interface Runtime {
  sha256: string;
  file: string;
  bytes: number;
  /** e.g. v20.20.2 */
  node: string;
  /** The directory inside the tarball: node-v20.20.2-linux-x64 */
  dir: string;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The runtime tarball of a Node binary (cached by the binary's checksum). */
export async function buildRuntime(o: RuntimeOptions): Promise<Runtime> {
  const binary = o.nodeBinary ?? process.execPath;
  const node = o.nodeVersion ?? process.version;
  const arch = o.arch ?? process.arch;
  if (!/^v20\./.test(node))
    throw fail('NODE_VERSION', `servers run Node 20; this build machine runs Node ${node}: run the toolkit with Node 20 (see README)`, {
      exitCode: 2,
    });
  if (arch !== 'x64')
    throw fail('NODE_ARCH', `servers are x64 Debian; this build machine's Node is for ${arch}: run the toolkit from an x64 machine`, {
      exitCode: 2,
    });
  const binarySha = await sha256File(binary);
  await mkdir(o.cacheDir, { recursive: true, mode: 0o700 });
  const dir = `node-${node}-linux-${arch}`;
  const cached = join(o.cacheDir, `runtime-${binarySha.slice(0, 24)}.tar.gz`);
  if (!existsSync(cached)) {
    const work = await mkdtemp(join(tmpdir(), 'adt-runtime-'));
    try {
      await mkdir(join(work, dir, 'bin'), { recursive: true });
      await copyFile(binary, join(work, dir, 'bin', 'node'));
      await writeFile(join(work, dir, 'VERSION'), `${node}\n`);
      for (const license of ['/usr/share/doc/nodejs/LICENSE', join(binary, '../../share/doc/node/LICENSE')]) {
        if (existsSync(license)) {
          await copyFile(license, join(work, dir, 'LICENSE'));
          break;
        }
      }
      const tarball = join(work, 'runtime.tar.gz');
      const r = await execaRunner({ timeoutMs: 300_000 }).run(
        [
          'sh',
          '-c',
          'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf - "$2" | gzip -n -6 > "$3"',
          'tar',
          work,
          dir,
          tarball,
        ],
        { nothrow: true },
      );
      if (r.exitCode !== 0) throw fail('RUNTIME_FAILED', `packing Node failed: ${outputTail(r)}`);
      await rename(tarball, cached).catch(() => copyFile(tarball, cached));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return { sha256: await sha256File(cached), file: cached, bytes: (await stat(cached)).size, node, dir };
}
