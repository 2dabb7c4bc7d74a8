/**
 * A PowerDNS authoritative server of our own (Debian's `pdns-server` + `pdns-backend-sqlite3`):
 * its own config dir, sqlite database, socket dir, pid file and log, on addresses and ports we
 * choose, with the HTTP API on and a generated key. The key is only in the 0600 config file and a
 * 0600 key file: never on a command line, never in a message.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { daemonPid, errorFactory, execaRunner, freePort, lastLines, startDaemon, stopDaemon, tailFile } from '@adt/core';

const fail = errorFactory('localcloud', 'powerdns');
const SCHEMA = '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql';

export interface PowerDnsOptions {
  /** Directory for config, database, key, pid file and log (created, mode 0700). */
  dataDir: string;
  /** Address DNS answers on (default 127.0.0.1; the local cloud uses its build machine address). */
  listenAddress?: string;
  /** DNS port (default 53; 0 picks a free one). */
  dnsPort?: number;
  /** Address of the HTTP API (default 127.0.0.1). */
  apiAddress?: string;
  /** API port (default 0: a free one). */
  apiPort?: number;
  /** Networks allowed to use the API (default 127.0.0.0/8 only). */
  apiAllowFrom?: string[];
  /** How long to wait for the API to answer (default 15 000 ms). */
  startTimeoutMs?: number;
}

export interface PowerDnsServer {
  dnsAddress: string;
  dnsPort: number;
  apiUrl: string;
  /** File holding the API key (mode 0600). */
  apiKeyFile: string;
  pid: number;
  /** Stops the server (by PID) and waits, bounded, for it to exit. */
  stop(): Promise<void>;
}

interface Saved {
  dnsAddress: string;
  dnsPort: number;
  apiUrl: string;
  pid: number;
}

/** Starts PowerDNS, or returns the one already running from `dataDir` on the addresses and ports asked for. */
export async function startPowerDns(o: PowerDnsOptions): Promise<PowerDnsServer> {
  for (const bin of ['/usr/sbin/pdns_server', SCHEMA]) {
    if (!existsSync(bin))
      throw fail(
        'NOT_INSTALLED',
        `${bin} is missing: install the Debian packages pdns-server and pdns-backend-sqlite3 (scripts/setup.sh does)`,
      );
  }
  const dnsAddress = o.listenAddress ?? '127.0.0.1';
  const apiAddress = o.apiAddress ?? '127.0.0.1';
  const running = await attachPowerDns(o.dataDir);
  if (running) {
    // Kept only when it serves where it is asked to (0: any port); else restarted, so a changed setting takes effect.
    const api = new URL(running.apiUrl);
    const serves =
      running.dnsAddress === dnsAddress &&
      (o.dnsPort === 0 || running.dnsPort === (o.dnsPort ?? 53)) &&
      api.hostname === apiAddress &&
      (!o.apiPort || Number(api.port) === o.apiPort);
    if (serves) return running;
    await running.stop();
  }
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const dnsPort = o.dnsPort === 0 ? await freePort(dnsAddress) : (o.dnsPort ?? 53);
  const apiPort = o.apiPort ? o.apiPort : await freePort(apiAddress);
  const db = join(o.dataDir, 'pdns.sqlite3');
  if (!existsSync(db)) {
    await execaRunner().run(['sqlite3', db], { input: await readFile(SCHEMA, 'utf8') });
  }
  const keyFile = join(o.dataDir, 'api.key');
  let key = (await readFile(keyFile, 'utf8').catch(() => '')).trim();
  if (!key) {
    key = randomBytes(24).toString('base64url');
    await writeFile(keyFile, key, { mode: 0o600 });
  }
  const config = [
    '# Written by the Agile Deployment Toolkit: a PowerDNS of its own (holds the API key: mode 0600).',
    'launch=gsqlite3',
    `gsqlite3-database=${db}`,
    `local-address=${dnsAddress}`,
    `local-port=${dnsPort}`,
    'api=yes',
    `api-key=${key}`,
    'webserver=yes',
    `webserver-address=${apiAddress}`,
    `webserver-port=${apiPort}`,
    `webserver-allow-from=${(o.apiAllowFrom ?? ['127.0.0.0/8']).join(',')}`,
    `socket-dir=${o.dataDir}`,
    'daemon=no',
    'guardian=no',
    'disable-syslog=yes',
    'log-timestamp=yes',
    'loglevel=4',
    'security-poll-suffix=',
    'default-ttl=60',
    // No answer caches: a record an autoscaler removes must stop being served at once.
    'cache-ttl=0',
    'query-cache-ttl=0',
    'negquery-cache-ttl=0',
    '',
  ].join('\n');
  await writeFile(join(o.dataDir, 'pdns.conf'), config, { mode: 0o600 });
  const apiUrl = `http://${apiAddress}:${apiPort}`;
  const up = () =>
    fetch(`${apiUrl}/api/v1/servers/localhost`, { headers: { 'X-API-Key': key }, signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
  try {
    const d = await startDaemon({
      name: 'pdns',
      dir: o.dataDir,
      argv: ['/usr/sbin/pdns_server', `--config-dir=${o.dataDir}`],
      up,
      identify: identify(o.dataDir),
      startTimeoutMs: o.startTimeoutMs,
      conflictHint: `DNS port ${dnsPort} or API port ${apiPort} on ${dnsAddress}/${apiAddress} is taken`,
    });
    const saved: Saved = { dnsAddress, dnsPort, apiUrl, pid: d.pid };
    await writeFile(join(o.dataDir, 'server.json'), JSON.stringify(saved), { mode: 0o600 });
    return handle(saved, o.dataDir);
  } catch (e) {
    const tail = lastLines(tailFile(join(o.dataDir, 'pdns.log'), 5)).replace(key, '***');
    const hint = /Address already in use|Unable to bind/i.test(tail) ? ` (port ${dnsPort} or ${apiPort} is taken)` : '';
    throw fail('START_FAILED', `PowerDNS did not answer on ${apiUrl}${hint}: ${tail || (e as Error).message}`, { cause: e });
  }
}

const identify = (dataDir: string) => (cmdline: string) => cmdline.includes('pdns_server') && cmdline.includes(dataDir);

/** The PowerDNS started earlier from `dataDir` (by another process too), or null when none runs. */
export async function attachPowerDns(dataDir: string): Promise<PowerDnsServer | null> {
  const saved = await readFile(join(dataDir, 'server.json'), 'utf8').then(
    (t) => JSON.parse(t) as Saved,
    () => null,
  );
  if (!saved || daemonPid(dataDir, 'pdns', identify(dataDir)) !== saved.pid) return null;
  return handle(saved, dataDir);
}

function handle(saved: Saved, dataDir: string): PowerDnsServer {
  return {
    ...saved,
    apiKeyFile: join(dataDir, 'api.key'),
    async stop() {
      await stopDaemon(dataDir, 'pdns', { timeoutMs: 5000, identify: identify(dataDir) });
    },
  };
}
