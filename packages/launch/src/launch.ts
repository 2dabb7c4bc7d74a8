/**
 * Launching a server as on a real cloud, the same way for the build and for an autoscaler:
 *
 *  1. its SSH host key is made here, and its public half recorded (`hostkeys/<name>`);
 *  2. its secrets are sealed in an envelope put in the config bucket (`bootstrap/<name>.envelope`);
 *  3. links that expire are signed for the envelope (GET and DELETE), the role bundle and Node;
 *  4. the server is created with user-data that holds those links and the envelope's key only.
 *
 * The artifacts (bundle, runtime) are published once per deployment (`publishArtifacts`); their
 * record (`config/bundle`) tells every later launch which ones to give.
 */
import { createReadStream } from 'node:fs';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { keys, type BundleRecord, type ConfigStore } from '@adt/configstore';
import { errorFactory } from '@adt/core';
import type { ComputeProvider, CreateServerOptions, Role, Server } from '@adt/providers';
import { envelopeObject, sealEnvelope, type Envelope } from './envelope.ts';
import { generateKeyPair } from './host-key.ts';
import { userDataScript } from './user-data.ts';

const fail = errorFactory('launch');

/** The artifacts to publish: files on this machine with their checksums. */
export interface LocalArtifacts {
  bundle: { file: string; sha256: string; bytes: number; version: string; inputs: string };
  runtime: { file: string; sha256: string; bytes: number; node: string; dir: string };
}

async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if ((e as Error).name === 'NotFound' || status === 404) return false;
    throw e;
  }
}

/**
 * Puts the bundle and the runtime in the config bucket (each only when absent: their names are
 * their checksums) and records them in `config/bundle`. Returns the record and whether anything
 * was uploaded.
 */
export async function publishArtifacts(
  store: ConfigStore,
  s3: S3Client,
  a: LocalArtifacts,
): Promise<{ record: BundleRecord; uploaded: string[]; changed: boolean }> {
  const bucket = store.bucket;
  const bundleKey = `artifacts/bundle-${a.bundle.sha256}.tar.gz`;
  const runtimeKey = `artifacts/runtime-${a.runtime.sha256}.tar.gz`;
  const uploaded: string[] = [];
  for (const [key, file] of [
    [bundleKey, a.bundle.file],
    [runtimeKey, a.runtime.file],
  ] as const) {
    if (await exists(s3, bucket, key)) continue;
    // Multipart for the 40 MB runtime (lib-storage: parts retried, aborted on failure).
    await new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: createReadStream(file), ContentType: 'application/gzip' },
    }).done();
    uploaded.push(key);
  }
  const previous = await store.get(keys.bundle);
  const record: BundleRecord = {
    bundle: { key: bundleKey, sha256: a.bundle.sha256, bytes: a.bundle.bytes, version: a.bundle.version, inputs: a.bundle.inputs },
    runtime: { key: runtimeKey, sha256: a.runtime.sha256, bytes: a.runtime.bytes, node: a.runtime.node, dir: a.runtime.dir },
    publishedAt:
      previous && previous.bundle.sha256 === a.bundle.sha256 && previous.runtime.sha256 === a.runtime.sha256
        ? previous.publishedAt
        : new Date().toISOString(),
  };
  const changed = !previous || previous.bundle.sha256 !== a.bundle.sha256 || previous.runtime.sha256 !== a.runtime.sha256;
  if (changed) await store.put(keys.bundle, record);
  return { record, uploaded, changed };
}

export interface LaunchContext {
  compute: ComputeProvider;
  store: ConfigStore;
  /** A client of the config bucket's endpoint, with the launcher's credentials (signs the links). */
  s3: S3Client;
  /** How long the links live (seconds): long enough for the server to boot and fetch them. */
  linkSeconds: number;
  /** Public keys of the build machine, for root on the server (and for the cloud's own key registration). */
  authorizedKeys: string[];
}

export interface LaunchRequest {
  name: string;
  role: Role;
  buildId: string;
  image?: string;
  size?: string;
  region?: string;
  tags?: string[];
  vpc?: string;
  /** What the server needs to know and hold; null: an image builder (no secret, `--prepare-image`). */
  secrets: Pick<Envelope, 'datastoreEnv' | 'datastoreKey' | 'secrets'> | null;
  /** An image builder's role: the one whose packages it installs before it powers off (its own role is `build`). */
  imageFor?: Role;
  /** Only the toolkit, unpacked, nothing run (no secrets): tests of the roles' commands, debugging. */
  unpackOnly?: boolean;
}

export interface Launched {
  server: Server;
  /** The server's host key (public), null for an image builder. */
  hostKey: string | null;
  /** The user-data it was given (holds no long-lived secret: tests check). */
  userData: string;
  expiresAt: string;
}

/** Signs a link to `key` for `method`, valid `seconds`. */
export function signLink(s3: S3Client, bucket: string, key: string, method: 'GET' | 'DELETE', seconds: number): Promise<string> {
  const command =
    method === 'GET' ? new GetObjectCommand({ Bucket: bucket, Key: key }) : new DeleteObjectCommand({ Bucket: bucket, Key: key });
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html
  return getSignedUrl(s3, command, { expiresIn: seconds });
}

/** Creates a server the way every server of the fleet is created (see the module's comment). */
export async function launchServer(ctx: LaunchContext, r: LaunchRequest): Promise<Launched> {
  if (r.unpackOnly && (r.secrets || r.imageFor))
    throw fail('BAD_LAUNCH', 'an unpack-only server runs nothing: it gets no secrets and builds no image', { exitCode: 2 });
  if (!r.secrets && !r.unpackOnly && (!r.imageFor || r.role !== 'build'))
    throw fail('BAD_LAUNCH', 'a server without secrets is an image builder (role build, imageFor its role) or unpack-only', {
      exitCode: 2,
    });
  const artifacts = await ctx.store.get(keys.bundle);
  if (!artifacts) throw fail('NO_BUNDLE', `${keys.bundle.path} is missing from the datastore: the build publishes the role bundle first`);
  const bucket = ctx.store.bucket;
  const expiresAt = new Date(Date.now() + ctx.linkSeconds * 1000).toISOString();
  let envelope: { url: string; deleteUrl: string; key: string } | null = null;
  let hostKey: string | null = null;
  if (r.secrets) {
    const pair = await generateKeyPair(r.name);
    hostKey = pair.publicKey;
    const sealed = sealEnvelope({
      version: 1,
      server: r.name,
      role: r.role,
      buildId: r.buildId,
      ...r.secrets,
      sshHostKey: pair,
      authorizedKeys: ctx.authorizedKeys,
    });
    const object = envelopeObject(r.name);
    await ctx.s3.send(new PutObjectCommand({ Bucket: bucket, Key: object, Body: sealed.body, ContentType: 'application/octet-stream' }));
    envelope = {
      url: await signLink(ctx.s3, bucket, object, 'GET', ctx.linkSeconds),
      deleteUrl: await signLink(ctx.s3, bucket, object, 'DELETE', ctx.linkSeconds),
      key: sealed.key,
    };
    await ctx.store.put(keys.hostKeys.key(r.name), { server: r.name, publicKey: pair.publicKey, at: new Date().toISOString() });
  }
  const userData = userDataScript({
    role: r.imageFor ?? r.role,
    server: r.name,
    buildId: r.buildId,
    runtime: {
      url: await signLink(ctx.s3, bucket, artifacts.runtime.key, 'GET', ctx.linkSeconds),
      sha256: artifacts.runtime.sha256,
      dir: artifacts.runtime.dir,
    },
    bundle: { url: await signLink(ctx.s3, bucket, artifacts.bundle.key, 'GET', ctx.linkSeconds), sha256: artifacts.bundle.sha256 },
    envelope,
    expiresAt,
    mode: r.secrets ? 'bootstrap' : r.unpackOnly ? 'unpack' : 'prepare-image',
  });
  const options: CreateServerOptions = {
    name: r.name,
    role: r.role,
    buildId: r.buildId,
    image: r.image,
    size: r.size,
    region: r.region,
    tags: r.tags,
    vpc: r.vpc,
    userData,
    sshKeys: ctx.authorizedKeys,
  };
  try {
    const server = await ctx.compute.create(options);
    return { server, hostKey, userData, expiresAt };
  } catch (e) {
    // The envelope of a server that was not made goes at once.
    if (r.secrets) await removeEnvelope(ctx.s3, bucket, r.name).catch(() => {});
    throw e;
  }
}

/** Deletes a server's envelope (when it is ready, or gone); absent is fine. */
export async function removeEnvelope(s3: S3Client, bucket: string, server: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: envelopeObject(server) }));
}
