/** The embedded S3 server as a local service of the build machine (see daemon.ts). */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { EMBEDDED_CREDENTIALS } from '@adt/configstore/embedded-s3';
import { attachDaemon, ensureDaemon, type Daemon } from './daemon.ts';

export interface S3DaemonOptions {
  /** State directory: data, pid file and log. */
  stateDir: string;
  address: string;
  port: number;
}

export interface S3Daemon extends Daemon {
  endpoint: string;
  dataDir: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export function attachS3Daemon(stateDir: string, endpoint: string): Promise<{ pid: number } | null> {
  return attachDaemon(stateDir, 's3', endpoint);
}

export async function ensureS3Daemon(o: S3DaemonOptions): Promise<S3Daemon> {
  const dataDir = join(o.stateDir, 'data');
  const endpoint = `http://${o.address}:${o.port}`;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const d = await ensureDaemon({
    name: 's3',
    stateDir: o.stateDir,
    script: 'roles/build/src/s3-serve.ts',
    args: [dataDir, o.address, String(o.port)],
    endpoint,
    portSetting: 'S3_PORT',
  });
  return { ...d, endpoint, dataDir, credentials: { ...EMBEDDED_CREDENTIALS } };
}
