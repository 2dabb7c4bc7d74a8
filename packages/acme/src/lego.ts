/**
 * Certificates by ACME with Debian's `lego` (https://go-acme.github.io/lego/) and a DNS-01
 * challenge: lego writes a TXT record `_acme-challenge.<name>` through the DNS provider's API, the
 * ACME server checks it, lego removes it. Webservers need no open port 80 and no ACME client.
 *
 * The DNS provider's credentials go to lego in its environment only (never on its command line,
 * which `ps` shows); lego's own output is quoted in errors with any credential value removed.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorFactory, lastLines, type Argv, type Runner } from '@adt/core';

const fail = errorFactory('acme', 'lego');

/**
 * Where lego's DNS-01 challenge records go, and the credentials for it. `pdns`: a PowerDNS HTTP
 * API (`apiUrl` like http://127.0.0.1:8081, `serverName` default `localhost`); the others: the
 * cloud's DNS API token or key pair (DigitalOcean's `apiUrl`: another endpoint of its API, without
 * `/v2`). Variable names: `lego dnshelp --code <provider>`.
 */
export type AcmeDnsAccess =
  | { provider: 'pdns'; apiUrl: string; apiKey: string; serverName?: string }
  | { provider: 'cloudflare'; apiToken: string }
  | { provider: 'digitalocean'; token: string; apiUrl?: string }
  | { provider: 'linode'; token: string }
  | { provider: 'vultr'; apiKey: string }
  | { provider: 'exoscale'; apiKey: string; apiSecret: string };

export interface LegoOptions {
  /** The ACME directory URL (Let's Encrypt, or a pebble's). */
  server: string;
  /** The ACME account's contact address. */
  email: string;
  /** Names on the certificate; the first names the files. */
  domains: string[];
  /** lego's state: account, keys, certificates (created 0700 by lego). */
  path: string;
  /** lego's DNS provider (`--dns`): the one `access` gives credentials for. */
  dns: AcmeDnsAccess['provider'];
  /** host:port resolvers lego uses to find the zone (SOA); default the system's. */
  resolvers?: string[];
  /** Skip waiting for the TXT record on every authoritative server (the local PowerDNS is the only one). */
  disablePropagationCheck?: boolean;
}

const NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

function check(o: LegoOptions): void {
  if (!/^https:\/\/\S+$/.test(o.server)) throw fail('BAD_SERVER', `ACME server "${o.server}": an https:// directory URL`, { exitCode: 2 });
  if (!/^[^\s@]+@[^\s@]+\.[a-z]{2,}$/i.test(o.email)) throw fail('BAD_EMAIL', `ACME email "${o.email}": an email address`, { exitCode: 2 });
  if (!o.domains.length) throw fail('BAD_DOMAINS', 'a certificate needs at least one name', { exitCode: 2 });
  for (const d of o.domains) if (!NAME.test(d)) throw fail('BAD_DOMAINS', `"${d}" is not a DNS name`, { exitCode: 2 });
}

/** lego's command line for `run` (first issue) or `renew`, as data. No secret is ever in it. */
export function legoArgv(o: LegoOptions, action: 'run' | 'renew', renew: { days?: number } = {}): Argv {
  check(o);
  const argv: string[] = [
    'lego',
    '--server',
    o.server,
    '--email',
    o.email,
    '--accept-tos',
    '--path',
    o.path,
    '--key-type',
    'ec256',
    '--dns',
    o.dns,
  ];
  for (const d of o.domains) argv.push('--domains', d);
  for (const r of o.resolvers ?? []) argv.push('--dns.resolvers', r);
  if (o.disablePropagationCheck) argv.push('--dns.disable-cp');
  if (action === 'run') argv.push('run');
  // renew makes a new key (no --reuse-key): a renewal also replaces a key that may have leaked.
  // --no-random-sleep: lego otherwise sleeps up to 8 minutes before a renewal (meant for crowds of
  // cron jobs at the same minute; ours run at a time the deployment chose).
  else argv.push('renew', '--days', String(renew.days ?? 30), '--no-random-sleep');
  return argv as unknown as Argv;
}

/** The environment lego's DNS provider reads its credentials from (names from `lego dnshelp`). */
export function legoEnv(dns: AcmeDnsAccess, caFile?: string): Record<string, string> {
  const env: Record<string, string> = {};
  switch (dns.provider) {
    case 'pdns':
      Object.assign(env, {
        PDNS_API_URL: dns.apiUrl,
        PDNS_API_KEY: dns.apiKey,
        PDNS_PROPAGATION_TIMEOUT: '60',
        PDNS_POLLING_INTERVAL: '1',
        PDNS_TTL: '60',
      });
      if (dns.serverName) env.PDNS_SERVER_NAME = dns.serverName;
      break;
    case 'cloudflare':
      env.CF_DNS_API_TOKEN = dns.apiToken;
      break;
    case 'digitalocean':
      env.DO_AUTH_TOKEN = dns.token;
      // Another endpoint of the same API (lego adds /v2/...): a test's fake, or a compatible service.
      if (dns.apiUrl) env.DO_API_URL = dns.apiUrl;
      break;
    case 'linode':
      env.LINODE_TOKEN = dns.token;
      break;
    case 'vultr':
      env.VULTR_API_KEY = dns.apiKey;
      break;
    case 'exoscale':
      Object.assign(env, { EXOSCALE_API_KEY: dns.apiKey, EXOSCALE_API_SECRET: dns.apiSecret });
      break;
  }
  // The ACME server's own HTTPS certificate, when a private CA signs it (pebble).
  if (caFile) env.LEGO_CA_CERTIFICATES = caFile;
  return env;
}

/** What is known of a certificate (the first of a PEM chain). */
export function certificateInfo(pem: string): { notAfter: Date; serial: string; names: string[] } {
  const c = new X509Certificate(pem);
  const names = (c.subjectAltName ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.startsWith('DNS:'))
    .map((x) => x.slice(4));
  return { notAfter: new Date(c.validTo), serial: c.serialNumber, names };
}

export interface IssuedAcmeCertificate {
  /** The certificate followed by its issuer (what the webserver serves). */
  chain: string;
  key: string;
  issuer: string;
  notAfter: Date;
  serial: string;
  /** True when this call issued a new certificate. */
  renewed: boolean;
}

export interface ObtainOptions extends LegoOptions {
  /** The DNS provider's API and credentials (they reach lego in its environment only). */
  access: AcmeDnsAccess;
  /** CA of the ACME server's own HTTPS (pebble's `httpsCaFile`), when not a public one. */
  serverCaFile?: string;
  /** Renew when fewer days than this are left (default 30). */
  renewDays?: number;
  /** Renew whatever the expiry. */
  force?: boolean;
  /**
   * The root the certificate must chain to (pebble's `rootPem()`): a certificate lego has that
   * chains elsewhere (pebble restarted since, with a new root) is replaced by a new one.
   */
  trustedRoot?: string;
  runner: Runner;
  /** Bound of one lego run (default 180 s). */
  timeoutMs?: number;
}

/** lego's file names: a wildcard `*.example.com` is stored as `_.example.com`. */
export function certificateFiles(path: string, domain: string): { crt: string; key: string; issuer: string } {
  const base = join(path, 'certificates', domain.replace(/^\*/, '_'));
  return { crt: `${base}.crt`, key: `${base}.key`, issuer: `${base}.issuer.crt` };
}

/**
 * A certificate for `domains`: issued (`lego run`) when lego has none yet for the first name, or
 * one whose names differ from `domains` (lego's `renew` would keep the old names and only add), or
 * one that does not chain to `trustedRoot`; else renewed (`lego renew`) when it expires within
 * `renewDays` days or `force` is set; otherwise the current one, `renewed: false`.
 */
export async function obtainCertificate(o: ObtainOptions): Promise<IssuedAcmeCertificate> {
  check(o);
  if (o.trustedRoot !== undefined && !isCertificate(o.trustedRoot))
    throw fail('BAD_ROOT', "trustedRoot: should be a PEM certificate (pebble's rootPem())", { exitCode: 2 });
  const files = certificateFiles(o.path, o.domains[0]!);
  const current = existsSync(files.crt) && existsSync(files.key) ? await readFile(files.crt, 'utf8') : null;
  const info = current ? certificateInfo(current) : null;
  const sameNames = info !== null && sameSet(info.names, o.domains);
  const chains = !o.trustedRoot || (info !== null && chainsTo(await readFile(files.issuer, 'utf8').catch(() => ''), o.trustedRoot));
  const action = info && sameNames && chains ? 'renew' : 'run';
  // lego renew renews when the certificate expires within --days days: more days than any
  // certificate lasts forces it (lego 4.9 has no --force).
  const days = o.force ? 100_000 : (o.renewDays ?? 30);
  const argv = legoArgv(o, action, { days });
  const env = legoEnv(o.access, o.serverCaFile);
  const r = await o.runner.run(argv, { env, nothrow: true, timeoutMs: o.timeoutMs ?? 180_000 });
  if (r.exitCode !== 0) {
    let tail = lastLines(`${r.stdout}\n${r.stderr}`, 8, '\n');
    // lego does not log credentials; removed anyway, should a provider's error ever echo one.
    for (const s of secretValues(o.access)) tail = tail.split(s).join('<secret>');
    const what = info ? (action === 'run' ? 'replace the' : 'renew the') : 'obtain a';
    throw fail(
      'ACME_FAILED',
      `lego could not ${what} certificate for ${o.domains.join(', ')} from ${o.server} ` +
        `(DNS-01 via ${o.access.provider}), exit ${r.exitCode}:\n${tail}`,
    );
  }
  const [chain, key, issuer] = await Promise.all([
    readFile(files.crt, 'utf8'),
    readFile(files.key, 'utf8'),
    readFile(files.issuer, 'utf8'),
  ]);
  const now = certificateInfo(chain);
  return { chain, key, issuer, notAfter: now.notAfter, serial: now.serial, renewed: now.serial !== info?.serial };
}

// --- Internal helpers ---

/** The credential values in `access` (everything but the provider's name and API URL). */
function secretValues(access: AcmeDnsAccess): string[] {
  return Object.entries(access)
    .filter(([k, v]) => typeof v === 'string' && !['provider', 'apiUrl', 'serverName'].includes(k) && v.length > 0)
    .map(([, v]) => v as string);
}

function isCertificate(pem: string): boolean {
  try {
    return Boolean(new X509Certificate(pem));
  } catch {
    return false;
  }
}

function sameSet(a: string[], b: string[]): boolean {
  const x = new Set(a.map((n) => n.toLowerCase()));
  const y = new Set(b.map((n) => n.toLowerCase()));
  return x.size === y.size && [...x].every((n) => y.has(n));
}

/** Whether the last certificate of lego's issuer file is `root` or is signed by it. */
function chainsTo(issuerPem: string, rootPem: string): boolean {
  const blocks = issuerPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks?.length) return false;
  try {
    const top = new X509Certificate(blocks[blocks.length - 1]!);
    const root = new X509Certificate(rootPem);
    return top.fingerprint256 === root.fingerprint256 || (top.checkIssued(root) && top.verify(root.publicKey));
  } catch {
    return false;
  }
}
