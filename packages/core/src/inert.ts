/**
 * A restored tree made inert before anything is replaced with it. A backup (or another site's
 * baseline) is input from the bucket, which is not trusted: its archive is unpacked by root into a
 * private staging directory, and only a tree that passes here is swapped in.
 *
 * What GNU tar already refuses (exit 2, so the restore fails): member names with `..`, hard links
 * whose target leaves the archive. Leading `/` is stripped, so absolute names land inside. What
 * tar creates and this refuses: links that are absolute, lead out of the tree or to nothing,
 * device files, FIFOs and sockets, and files hard-linked to something outside the tree. Owners are
 * not taken from the archive (tar --no-same-owner: everything belongs to the restoring user), and
 * setuid, setgid and sticky bits are cleared.
 */
import { chmod, lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { errorFactory } from './errors.ts';

const fail = errorFactory('core', 'restore');

/** tar's options for unpacking a tree that is not trusted (with `--extract`): no owners from the archive. */
export const UNTRUSTED_EXTRACT = ['--no-same-owner', '--no-same-permissions', '--no-overwrite-dir'];

export interface InertReport {
  entries: number;
  /** Entries whose setuid, setgid or sticky bit was cleared. */
  specialBitsCleared: string[];
}

/**
 * Walks `root` (without following links) and throws RESTORE_REFUSED, naming the first offending
 * entry, when the tree holds a link out of it, a device file, a FIFO, a socket or a hard link to a
 * file outside; clears setuid, setgid and sticky bits. Bounded by `maxEntries`.
 */
export async function makeInert(root: string, what: string, maxEntries = 5_000_000): Promise<InertReport> {
  const top = resolve(root);
  const realTop = await realpath(top);
  const refuse = (rel: string, why: string) =>
    fail('RESTORE_REFUSED', `${what}: "${rel}" ${why}: it is refused and nothing was replaced`, { exitCode: 1 });
  const links = new Map<string, { nlink: bigint; seen: bigint; rel: string }>();
  const report: InertReport = { entries: 0, specialBitsCleared: [] };
  const stack = [top];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const name of await readdir(dir)) {
      if (++report.entries > maxEntries) throw refuse(relative(top, dir), `holds more than ${maxEntries} entries`);
      const full = join(dir, name);
      const rel = relative(top, full);
      const st = await lstat(full, { bigint: true });
      if (st.isSymbolicLink()) {
        const target = await readlink(full);
        if (isAbsolute(target)) throw refuse(rel, `is a link to an absolute path (${target})`);
        // Where the kernel takes it, through any other link of the tree: inside, or refused. A link
        // that leads nowhere is refused too (what it names could appear outside later).
        const to = await realpath(full).catch(() => null);
        if (to === null) throw refuse(rel, `is a link to nothing in the restored tree (${target})`);
        if (!within(realTop, to)) throw refuse(rel, `is a link out of the restored tree (to ${target})`);
        continue;
      }
      if (st.isBlockDevice() || st.isCharacterDevice()) throw refuse(rel, 'is a device file');
      if (st.isFIFO()) throw refuse(rel, 'is a FIFO');
      if (st.isSocket()) throw refuse(rel, 'is a socket');
      if (st.mode & 0o7000n) {
        await chmod(full, Number(st.mode & 0o777n));
        report.specialBitsCleared.push(rel);
      }
      if (st.isDirectory()) stack.push(full);
      else if (st.nlink > 1n) {
        const id = `${st.dev}:${st.ino}`;
        const l = links.get(id) ?? { nlink: st.nlink, seen: 0n, rel };
        l.seen++;
        links.set(id, l);
      }
    }
  }
  for (const l of links.values()) if (l.seen < l.nlink) throw refuse(l.rel, 'is hard-linked to a file outside the restored tree');
  return report;
}

function within(top: string, path: string): boolean {
  const r = relative(top, path);
  return r === '' || (r !== '..' && !r.startsWith('../') && !isAbsolute(r));
}
