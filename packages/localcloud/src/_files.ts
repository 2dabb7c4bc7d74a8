/** File helpers of the local cloud. */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';

/**
 * Writes JSON so that a reader in another process never sees half of it: a temporary file in the
 * same directory, then a rename (atomic on one filesystem). Server records and firewall rules are
 * read concurrently by the cloud's API, its firewall render and other processes.
 */
export async function writeJsonAtomic(file: string, value: unknown, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2), { mode });
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
