/**
 * The envelope: a server's secrets (its datastore settings and key, its SSH host key, root's
 * authorized keys, role secrets such as an autoscaler's cloud token), delivered once. The build
 * (or an autoscaler) seals it with a key made for this envelope alone (AES-256-GCM, the object's
 * name bound as authenticated data), puts it in the config bucket, and gives the server, in its
 * user-data, a link that expires within minutes and the envelope's key. The server fetches it
 * once, deletes it, and the link leads nowhere from then on. Nothing in user-data (readable by
 * every process of the VM through the metadata service, and by whoever reads the account's
 * instance settings) opens anything once the server has booted.
 */
import { randomBytes } from 'node:crypto';
import { decryptValue, encryptValue, type JsonValue } from '@adt/configstore';
import { errorFactory } from '@adt/core';
import type { Role } from '@adt/providers';

const fail = errorFactory('launch', 'envelope');

export interface Envelope {
  version: 1;
  server: string;
  role: Role;
  buildId: string;
  /** The variables of the server's /etc/adt/datastore.env (ADT_S3_*, ADT_CONFIG_BUCKET, ADT_WRITE_BUDGET, ADT_WEB_MODE...). */
  datastoreEnv: Record<string, string>;
  /** The role's datastore key, 64 hex digits. */
  datastoreKey: string;
  /** The server's SSH host key (OpenSSH format); the build keeps the public half as a pinned known host. */
  sshHostKey: { privateKey: string; publicKey: string };
  /** Root's authorized keys (the build machine's). */
  authorizedKeys: string[];
  /** Role secrets (an autoscaler's cloud access). */
  secrets?: Record<string, JsonValue>;
}

/** The object an envelope is kept at in the config bucket, until its server took it. */
export function envelopeObject(server: string): string {
  if (!/^[a-z0-9-]{1,64}$/.test(server)) throw fail('BAD_NAME', `server name "${server}"`, { exitCode: 2 });
  return `bootstrap/${server}.envelope`;
}

/** Seals an envelope: its body (to store) and the key (hex, for the server's user-data only). */
export function sealEnvelope(e: Envelope): { key: string; body: Buffer } {
  if (!/^[0-9a-f]{64}$/.test(e.datastoreKey)) throw fail('BAD_ENVELOPE', 'datastoreKey: 64 hex digits', { exitCode: 2 });
  const key = randomBytes(32);
  const body = encryptValue(Buffer.from(JSON.stringify(e), 'utf8'), key, envelopeObject(e.server));
  return { key: key.toString('hex'), body };
}

/** Opens an envelope fetched by `server`; a wrong key or an altered body is refused. */
export function openEnvelope(body: Uint8Array, keyHex: string, server: string): Envelope {
  if (!/^[0-9a-f]{64}$/.test(keyHex)) throw fail('BAD_KEY', "the envelope's key: 64 hex digits", { exitCode: 2 });
  const plain = decryptValue(body, Buffer.from(keyHex, 'hex'), envelopeObject(server));
  const e = JSON.parse(plain.toString('utf8')) as Envelope;
  if (e.version !== 1 || e.server !== server) throw fail('BAD_ENVELOPE', `the envelope is not for ${server}`);
  return e;
}
