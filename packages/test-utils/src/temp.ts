/**
 * Temporary directories for tests: made under the OS temp directory, named after the test, and
 * removed afterwards whatever happened.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDirOptions {
  /**
   * Mode to give the directory (mkdtemp makes it 0700). 0o755 lets a service that drops to its
   * own user (mysqld, php-fpm, nginx workers) reach what the test puts in it.
   */
  mode?: number;
}

/**
 * Makes a fresh directory `<tmpdir>/adt-<name>-XXXXXX` and returns its path. Pair it with
 * {@link removeTempDir} in a suite's `after` hook, or use {@link withTempDir} inside one case.
 *
 * https://nodejs.org/api/fs.html#fspromisesmkdtempprefix-options
 */
export async function tempDir(name: string, options: TempDirOptions = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `adt-${name}-`));
  if (options.mode !== undefined) await chmod(dir, options.mode);
  return dir;
}

/**
 * Removes a directory and everything in it; nothing happens when it is already gone or when `dir`
 * is undefined (an `after` hook runs even when `before` failed before making it).
 */
export async function removeTempDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/**
 * Runs `fn` with a fresh {@link tempDir} and removes the directory afterwards, whether `fn`
 * returned or threw; returns what `fn` returned.
 */
export async function withTempDir<T>(name: string, fn: (dir: string) => Promise<T> | T, options: TempDirOptions = {}): Promise<T> {
  const dir = await tempDir(name, options);
  try {
    return await fn(dir);
  } finally {
    await removeTempDir(dir);
  }
}
