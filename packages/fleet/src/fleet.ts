/**
 * An opened deployment: what every command of the build machine works with (deploy, destroy,
 * status, the helpers): the provider's kit, the build's files, the config datastore and a client of
 * its bucket, and SSH onto the servers.
 *
 * A dry run opens the same thing over transports that record instead of sending: the provider's
 * fake (kit.calls), a throwaway S3 server in a temporary directory (every S3 call recorded), the
 * build's files in that directory too, lego and SSH recorded. Nothing under STATE_DIR, on the
 * cloud or in the real bucket is touched; the temporary directory is removed on close.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { ConfigStore } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { AdtError, recordingRunner, type Runner } from '@adt/core';
import { openKit, type CloudKit } from './kit.ts';
import type { Deployment } from './settings.ts';
import { Ssh } from './ssh.ts';
import { BuildState } from './state.ts';
import { legoCertifier, recordingCertifier, type Certifier } from './tls.ts';

export interface Fleet {
  d: Deployment;
  kit: CloudKit;
  state: BuildState;
  /** The config datastore, with the deployment's key when the build has one. */
  store: ConfigStore;
  /** A client of the config bucket's endpoint with the build's credentials (artifacts, envelopes, signed links). */
  s3: S3Client;
  ssh: Ssh;
  certifier: Certifier;
  /** Commands run on this machine for the fleet (SSH, lego): a dry run records them. */
  runner: Runner | null;
  dryRun: { s3Calls: string[]; lego: string[]; ssh: string[]; dir: string } | null;
  /** Opens the datastore again with another key (the authentication server's). */
  storeWithKey(key: Buffer): ConfigStore;
  close(): Promise<void>;
}

function s3ClientFor(kit: CloudKit, record?: string[]): S3Client {
  const client = new S3Client({
    region: kit.storage.region,
    endpoint: kit.storage.endpoint,
    forcePathStyle: true,
    credentials: kit.storage.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  if (record) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Bucket?: string; Key?: string };
        record.push(`${context.commandName ?? 'S3'} ${[input.Bucket, input.Key].filter(Boolean).join('/')}`);
        return next(args);
      },
      { step: 'initialize', name: 'adtRecordS3Calls' },
    );
  }
  return client;
}

/**
 * Opens the deployment `d`. `apply`: the provider for real (the local cloud is started when needed);
 * `dry-run`: everything recorded, nothing sent; `attach`: the running local cloud only (null when
 * it does not run).
 */
export async function openFleet(d: Deployment, transport: 'apply' | 'dry-run' | 'attach'): Promise<Fleet | null> {
  if (transport === 'dry-run') return openDryRun(d);
  const kit = await openKit(d, transport);
  if (!kit) return null;
  const state = new BuildState(d);
  const make = (key?: Buffer) =>
    new ConfigStore({
      driver: s3Driver({
        bucket: d.configBucket,
        endpoint: kit.storage.endpoint,
        region: kit.storage.region,
        credentials: kit.storage.credentials,
      }),
      secretKey: key,
      writeBudget: kit.storage.writeBudget,
    });
  const store = make(state.key());
  const s3 = s3ClientFor(kit);
  return {
    d,
    kit,
    state,
    store,
    s3,
    ssh: new Ssh({ keyFile: state.sshKeyFile, knownHostsFile: state.knownHostsFile }),
    certifier: legoCertifier,
    runner: null,
    dryRun: null,
    storeWithKey: make,
    async close() {
      await store.driver.dispose?.();
      s3.destroy();
      await kit.dispose();
    },
  };
}

async function openDryRun(d: Deployment): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'adt-dry-run-'));
  const { startEmbeddedS3 } = await import('@adt/localcloud/services/s3');
  const s3server = await startEmbeddedS3({ directory: join(dir, 's3') });
  const kit = (await openKit(d, 'dry-run'))!;
  const s3Calls: string[] = [];
  const lego: string[] = [];
  const ssh: string[] = [];
  // The provider's object storage, played by a throwaway S3 server: the same calls, nowhere real.
  const storage = { ...kit.storage, endpoint: s3server.endpoint, region: s3server.region, credentials: s3server.credentials };
  const dryKit: CloudKit = { ...kit, storage };
  const state = new BuildState({ ...d, stateDir: join(dir, 'state') });
  const s3 = s3ClientFor(dryKit, s3Calls);
  // The datastore's calls go through the same recording client.
  const make = (key?: Buffer) =>
    new ConfigStore({ driver: s3Driver({ bucket: d.configBucket, client: s3 }), secretKey: key, writeBudget: null });
  const store = make(state.key());
  const runner = recordingRunner((argv) => {
    ssh.push(argv.join(' '));
    return { stdout: '{}\n' };
  });
  return {
    d,
    kit: dryKit,
    state,
    store,
    s3,
    ssh: new Ssh({ keyFile: state.sshKeyFile, knownHostsFile: state.knownHostsFile, runner }),
    certifier: recordingCertifier(lego, join(dir, 'lego')),
    runner,
    dryRun: { s3Calls, lego, ssh, dir },
    storeWithKey: make,
    async close() {
      await store.driver.dispose?.();
      s3.destroy();
      await kit.dispose();
      await s3server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function requireCloud(f: Fleet | null, what: string, d: Deployment): Fleet {
  if (f) return f;
  throw new AdtError('NOT_RUNNING', `${what}: the local cloud "${d.local.cloudId}" is not running (nothing deployed): deploy first`, {
    pkg: 'fleet',
    exitCode: 2,
  });
}
