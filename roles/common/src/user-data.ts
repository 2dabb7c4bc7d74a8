/**
 * User-data of a server (what cloud-init runs at first boot): the datastore settings and key, written
 * mode 0600, then the role's bootstrap. Everything else a server needs, it reads from the datastore.
 * The settings travel in the script's body (a file), never on a command line.
 */
import type { FleetRole } from '@adt/firewall';

export interface UserDataSettings {
  role: FleetRole;
  s3Endpoint: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  configBucket: string;
  /** The deployment's datastore key, hex. */
  datastoreKey: string;
  webMode: 'open' | 'cloudflare' | 'auth';
  dbPort: number;
  /** Where the toolkit's code is on the server. */
  codeDir: string;
}

const SAFE = /^[A-Za-z0-9._:/@+=-]*$/;

/** The dotenv file a server reads its datastore and firewall settings from. */
export function datastoreEnv(s: UserDataSettings): string {
  const vars: [string, string][] = [
    ['ADT_S3_ENDPOINT', s.s3Endpoint],
    ['ADT_S3_ACCESS_KEY_ID', s.s3AccessKeyId],
    ['ADT_S3_SECRET_ACCESS_KEY', s.s3SecretAccessKey],
    ['ADT_CONFIG_BUCKET', s.configBucket],
    ['ADT_DATASTORE_KEY_FILE', '/etc/adt/datastore.key'],
    // The embedded S3 has no per-object write limit (real Spaces-like backends do: leave it unset there).
    ['ADT_WRITE_BUDGET', 'none'],
    ['ADT_WEB_MODE', s.webMode],
    ['ADT_DB_PORT', String(s.dbPort)],
    ['ADT_HTTP', 'yes'],
  ];
  for (const [k, v] of vars) if (!SAFE.test(v)) throw new Error(`${k}: a value with characters unsafe in a settings file`);
  return `${vars.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

export function userData(s: UserDataSettings): string {
  if (!/^[0-9a-f]{64}$/.test(s.datastoreKey)) throw new Error('datastoreKey: 64 hex digits');
  return [
    '#!/bin/sh',
    `# First boot of a ${s.role} server of the Agile Deployment Toolkit (holds credentials: never log it).`,
    'set -eu',
    'umask 077',
    'mkdir -p /etc/adt',
    "cat > /etc/adt/datastore.env <<'ADT_END'",
    datastoreEnv(s).trimEnd(),
    'ADT_END',
    "cat > /etc/adt/datastore.key <<'ADT_END'",
    s.datastoreKey,
    'ADT_END',
    'umask 022',
    `exec ${s.codeDir}/roles/${s.role}/bootstrap`,
    '',
  ].join('\n');
}
