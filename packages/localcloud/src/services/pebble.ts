/**
 * A pebble of our own (Debian's `pebble`, Let's Encrypt's ACME test server): the local provider's
 * certificate authority for TLS=acme, and the tests'. It checks DNS-01 challenges by asking the DNS
 * server we give it (the local cloud's PowerDNS), so the flow is the real one end to end.
 *
 * - Its own HTTPS uses a certificate from a small CA made here (`httpsCaFile`: give it to lego as
 *   LEGO_CA_CERTIFICATES).
 * - The root that signs the certificates it issues is generated at every start and served on the
 *   management port (`/roots/0`): fetch it with `rootPem()` right after issuing and keep it;
 *   after a restart, earlier certificates chain to a root that no longer exists.
 * - Started detached (it outlives the deploy), found again through `pebble.json` (its
 *   PID, URLs and DNS server), stopped by PID. A running pebble that checks challenges through
 *   another DNS server than the one asked for is useless: it is stopped and started again (a new
 *   root, as at every start).
 * - Environment: PEBBLE_VA_NOSLEEP=1 (no random 0-15 s sleep before each validation),
 *   PEBBLE_WFE_NONCEREJECT=0 (no 5 % of good nonces refused), PEBBLE_AUTHZREUSE=0 (every order
 *   runs its DNS-01 challenge again instead of reusing a valid authorization half of the time).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { daemonPid, errorFactory, execaRunner, freePort, startDaemon, stopDaemon } from '@adt/core';
import { ensureCa, issueCertificate } from '@adt/webserver';

const fail = errorFactory('localcloud', 'pebble');
const PEBBLE = '/usr/bin/pebble';

export interface PebbleOptions {
  /** Config, TLS files, pid file and log (created 0700). */
  dataDir: string;
  /** host:port of the DNS server pebble resolves challenge records with. */
  dnsServer: string;
  /** Address of the ACME and management ports (default 127.0.0.1). */
  listenAddress?: string;
  /** ACME port (default: a free one). */
  port?: number;
  /** Management port: `/roots/0`, the root that signs issued certificates (default: a free one). */
  managementPort?: number;
  /** Bound of the wait for the directory to answer (default 15 000 ms). */
  startTimeoutMs?: number;
}

export interface Pebble {
  /** The ACME directory URL, e.g. https://127.0.0.1:14000/dir */
  directoryUrl: string;
  /** The CA of pebble's own HTTPS certificate (for lego: LEGO_CA_CERTIFICATES). */
  httpsCaFile: string;
  /**
   * The root that signs issued certificates, from the management interface (`/roots/0`). Pebble
   * makes a new one at every start: keep it with the certificates it issued.
   */
  rootPem(): Promise<string>;
  /** The DNS server (host:port) it checks challenges with; null when its pebble.json predates it. */
  dnsServer: string | null;
  pid: number;
  /** Stops pebble by PID (SIGTERM, bounded wait, then SIGKILL). */
  stop(): Promise<void>;
}

interface Saved {
  pid: number;
  directoryUrl: string;
  managementUrl: string;
  dnsServer?: string;
}

/** GET over HTTPS trusting only `ca`; the body as text. Bounded. */
function httpsText(url: string, ca: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

function handle(dataDir: string, saved: Saved, ca: string): Pebble {
  return {
    directoryUrl: saved.directoryUrl,
    httpsCaFile: join(dataDir, 'tls', 'ca', 'ca.crt'),
    dnsServer: saved.dnsServer ?? null,
    pid: saved.pid,
    async rootPem() {
      const r = await httpsText(`${saved.managementUrl}/roots/0`, ca);
      if (r.status !== 200 || !r.body.includes('BEGIN CERTIFICATE'))
        throw fail('NO_ROOT', `pebble's management interface did not give its root (HTTP ${r.status})`);
      return r.body;
    },
    async stop() {
      await stopDaemon(dataDir, 'pebble', { timeoutMs: 5000, identify: identify(dataDir) });
    },
  };
}

const identify = (dataDir: string) => (cmdline: string) => cmdline.includes('pebble') && cmdline.includes(dataDir);

/** The pebble started earlier from `dataDir`, when it still runs and answers; else null. */
export async function attachPebble(dataDir: string): Promise<Pebble | null> {
  const saved = await readFile(join(dataDir, 'pebble.json'), 'utf8').then(
    (t) => JSON.parse(t) as Saved,
    () => null,
  );
  if (!saved || daemonPid(dataDir, 'pebble', identify(dataDir)) !== saved.pid) return null;
  const ca = await readFile(join(dataDir, 'tls', 'ca', 'ca.crt'), 'utf8');
  const up = await httpsText(saved.directoryUrl, ca).then(
    (r) => r.status === 200,
    () => false,
  );
  return up ? handle(dataDir, saved, ca) : null;
}

/**
 * Starts pebble, or returns the one already running from `dataDir` (when it resolves challenges
 * through the same `dnsServer`; else that one is stopped and a new one started).
 */
export async function startPebble(o: PebbleOptions): Promise<Pebble> {
  if (!existsSync(PEBBLE)) throw fail('NOT_INSTALLED', `${PEBBLE} is missing: install the Debian package pebble (scripts/setup.sh does)`);
  if (!/^[^\s:]+:\d{1,5}$/.test(o.dnsServer)) throw fail('BAD_DNS_SERVER', `dnsServer "${o.dnsServer}": host:port`, { exitCode: 2 });
  const running = await attachPebble(o.dataDir);
  if (running) {
    if (running.dnsServer === o.dnsServer) return running;
    await running.stop();
  }
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const address = o.listenAddress ?? '127.0.0.1';
  const runner = execaRunner({ timeoutMs: 30_000 });
  // pebble's own HTTPS: a small CA kept in dataDir (lego trusts it), a server certificate issued at every start.
  const ca = await ensureCa(runner, join(o.dataDir, 'tls', 'ca'), 'ADT pebble HTTPS CA');
  const server = await issueCertificate(runner, ca, join(o.dataDir, 'tls', 'server'), [address, 'localhost']);
  const tls = { caFile: ca.certFile, certFile: server.certFile, keyFile: server.keyFile };
  const port = o.port ?? (await freePort(address));
  const managementPort = o.managementPort ?? (await freePort(address));
  const config = {
    pebble: {
      listenAddress: `${address}:${port}`,
      managementListenAddress: `${address}:${managementPort}`,
      certificate: tls.certFile,
      privateKey: tls.keyFile,
      // Unused by DNS-01 (pebble listens on neither: it would connect out to them for HTTP-01 and TLS-ALPN-01).
      httpPort: 5002,
      tlsPort: 5001,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  const configFile = join(o.dataDir, 'pebble-config.json');
  await writeFile(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
  const directoryUrl = `https://${address}:${port}/dir`;
  const caPem = await readFile(tls.caFile, 'utf8');
  // https://github.com/letsencrypt/pebble#readme (flags -config, -dnsserver; the PEBBLE_* variables)
  const d = await startDaemon({
    name: 'pebble',
    dir: o.dataDir,
    argv: [PEBBLE, '-config', configFile, '-dnsserver', o.dnsServer],
    // No random waits before validation, no random nonce refusals, no reused authorizations: a
    // test server that behaves the same at every run and checks every challenge.
    env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    up: () =>
      httpsText(directoryUrl, caPem, 1000).then(
        (r) => r.status === 200,
        () => false,
      ),
    identify: identify(o.dataDir),
    startTimeoutMs: o.startTimeoutMs,
    conflictHint: `port ${port} or ${managementPort} on ${address} is taken`,
  });
  const saved: Saved = { pid: d.pid, directoryUrl, managementUrl: `https://${address}:${managementPort}`, dnsServer: o.dnsServer };
  await writeFile(join(o.dataDir, 'pebble.json'), JSON.stringify(saved), { mode: 0o600 });
  return handle(o.dataDir, saved, caPem);
}
