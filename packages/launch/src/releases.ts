/**
 * Releases in the deployment's config bucket: each archive at `releases/<id>.tar.gz` (written once,
 * named by its id, checked by its SHA-256 wherever it is read), and `config/releases` naming the
 * current one and those before it. A release is uploaded before it is named, so whoever reads the
 * record finds the archive; webservers made later read the same record when they boot.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { keys, type ConfigStore, type Release, type Releases } from '@adt/configstore';
import { errorFactory } from '@adt/core';
import { checkReleaseId as checkId, fileDigest, newReleaseId, type PackedRelease } from '@adt/webserver';

const fail = errorFactory('launch', 'releases');

/** How many earlier releases the record keeps for rollbacks. */
export const KEPT_RELEASES = 9;

export const releaseObject = (id: string) => `releases/${checkId(id)}.tar.gz`;

/** Uploads a packed release under a new id; returns its record (not yet current: see makeReleaseCurrent). */
export async function uploadRelease(
  s3: S3Client,
  bucket: string,
  packed: PackedRelease,
  source: string,
  now = new Date(),
): Promise<Release> {
  const id = newReleaseId(now);
  await new Upload({
    client: s3,
    params: { Bucket: bucket, Key: releaseObject(id), Body: createReadStream(packed.file), ContentType: 'application/gzip' },
  }).done();
  return { id, sha256: packed.sha256, bytes: packed.bytes, createdAt: now.toISOString(), source };
}

/** Names `release` the current one; the one before goes first in `previous`. Returns the new record. */
export async function makeReleaseCurrent(store: ConfigStore, release: Release): Promise<Releases> {
  const old = await store.get(keys.releases);
  const previous = old ? [old.current, ...old.previous].filter((r) => r.id !== release.id).slice(0, KEPT_RELEASES) : [];
  const record: Releases = { current: release, previous, ...(old ? { replacing: old.current.id } : {}) };
  await store.put(keys.releases, record);
  return record;
}

/** The rollout of `id` ended: webservers serving the one it replaced are no longer healthy. */
export async function endRollout(store: ConfigStore, id: string): Promise<void> {
  const r = await store.get(keys.releases);
  if (r && r.current.id === id && r.replacing) {
    const { replacing: _done, ...rest } = r;
    await store.put(keys.releases, rest);
  }
}

/**
 * Makes the release before the current one current again (`to`: a given earlier one instead); the
 * one left stays out of the list. Refused (exit 2) when there is none.
 */
export async function rollBackRelease(store: ConfigStore, to?: string): Promise<{ record: Releases; from: Release }> {
  const old = await store.get(keys.releases);
  if (!old) throw fail('NO_RELEASE', 'the site has no release yet: deploy it first', { exitCode: 2 });
  const i = to ? old.previous.findIndex((r) => r.id === to) : 0;
  const target = old.previous[i];
  if (!target) {
    throw fail(
      'NO_EARLIER_RELEASE',
      to
        ? `release ${to} is not among the earlier releases (${old.previous.map((r) => r.id).join(', ') || 'none'})`
        : `there is no release before ${old.current.id} to roll back to`,
      { exitCode: 2 },
    );
  }
  const record: Releases = { current: target, previous: old.previous.slice(i + 1), replacing: old.current.id };
  await store.put(keys.releases, record);
  return { record, from: old.current };
}

/** Downloads a release's archive to `file` and checks its size and SHA-256; a mismatch removes the file and fails. */
export async function downloadRelease(s3: S3Client, bucket: string, release: Release, file: string): Promise<void> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: releaseObject(release.id) })).catch((e: Error) => {
    throw fail(
      'NO_ARCHIVE',
      `release ${release.id}: its archive ${releaseObject(release.id)} could not be read from ${bucket}: ${e.message}`,
    );
  });
  await pipeline(r.Body as Readable, createWriteStream(file, { mode: 0o600 }));
  const got = await fileDigest(file);
  if (got.sha256 !== release.sha256 || got.bytes !== release.bytes) {
    await rm(file, { force: true });
    throw fail(
      'RELEASE_MISMATCH',
      `release ${release.id}: the archive in ${bucket} has ${got.bytes} bytes with SHA-256 ${got.sha256.slice(0, 12)}..., ` +
        `its record says ${release.bytes} bytes, ${release.sha256.slice(0, 12)}...: not installed`,
    );
  }
}
