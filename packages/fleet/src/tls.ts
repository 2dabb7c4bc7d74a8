/**
 * The site's certificate, made by the build machine and kept encrypted in the datastore
 * (`secrets/tls`); every webserver installs it and follows its changes (SyncCertificate).
 *
 * - TLS=local-ca: issued once by the build's local CA (STATE_DIR/builds/<id>/ca).
 * - TLS=acme: by ACME with lego and a DNS-01 challenge on the cloud's DNS (or Cloudflare), from
 *   ACME_SERVER or, on the local cloud, its pebble. Each deploy re-run and RenewCertificate renew
 *   it when it expires within TLS_RENEW_DAYS days.
 *
 * With WEB_FIREWALL=auth the sign-in host has a certificate of its own, kept with the
 * authentication server's secrets (encrypted with that server's own key).
 *
 * lego is reached through a `Certifier` (the real one runs lego; a dry run's records its command).
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { legoArgv, obtainCertificate, type IssuedAcmeCertificate, type ObtainOptions } from '@adt/acme';
import { keys, type ConfigStore, type SiteTls } from '@adt/configstore';
import { AdtError, execaRunner, pollUntil, type Runner } from '@adt/core';
import { connect as tlsConnect } from 'node:tls';
import { ensureCa, issueCertificate } from '@adt/webserver';
import type { Fleet } from './fleet.ts';
import type { CloudKit } from './kit.ts';
import type { Deployment } from './settings.ts';
import type { BuildState } from './state.ts';

/** Obtains (or renews) an ACME certificate: lego, or a dry run's record of its command. */
export type Certifier = (o: Omit<ObtainOptions, 'runner'>) => Promise<IssuedAcmeCertificate>;

/** The real certifier: lego, run on this machine. */
export const legoCertifier: Certifier = (o) => obtainCertificate({ ...o, runner: execaRunner({ timeoutMs: 180_000 }) });

/** A dry run's certifier: records lego's command line and answers with a certificate from a throwaway CA. */
export function recordingCertifier(lines: string[], scratch: string): Certifier {
  return async (o) => {
    lines.push(
      `${legoArgv({ ...o }, 'run').join(' ')}   ` +
        `(DNS-01: a TXT record _acme-challenge.${o.domains[0]} through ${o.access.provider}, removed after)`,
    );
    const runner = execaRunner({ timeoutMs: 60_000 });
    const ca = await ensureCa(runner, join(scratch, 'ca'), 'dry-run CA');
    const issued = await issueCertificate(runner, ca, join(scratch, 'tls', o.domains[0]!), o.domains);
    const chain = readFileSync(issued.chainFile, 'utf8');
    const info = new X509Certificate(chain);
    return {
      chain,
      key: readFileSync(issued.keyFile, 'utf8'),
      issuer: readFileSync(ca.certFile, 'utf8'),
      serial: info.serialNumber,
      notAfter: new Date(info.validTo),
      renewed: true,
    };
  };
}

export interface TlsContext {
  d: Deployment;
  state: BuildState;
  kit: CloudKit;
  certifier: Certifier;
  runner?: Runner;
}

interface AcmeResult {
  tls: SiteTls;
  renewed: boolean;
  serial: string;
  notAfter: Date;
  server: string;
}

/** Issues or renews a certificate for `names` by ACME. */
async function acme(c: TlsContext, names: string[], force: boolean): Promise<AcmeResult> {
  const d = c.d;
  const own = d.tls.acmeServer ? null : await c.kit.acme?.();
  if (!d.tls.acmeServer && !own) throw new Error(`TLS=acme on ${d.provider} needs ACME_SERVER`);
  const server = d.tls.acmeServer ?? own!.directoryUrl;
  let serverCaFile: string | undefined;
  if (own?.httpsCaPem) {
    await c.state.ensureDir();
    serverCaFile = join(c.state.dir, 'acme-server-ca.pem');
    writeFileSync(serverCaFile, own.httpsCaPem, { mode: 0o644 });
  }
  const access = await c.kit.acmeDns();
  const issued = await c.certifier({
    server,
    email: d.tls.acmeEmail ?? `hostmaster@${d.zone}`,
    domains: names,
    path: c.state.legoDir,
    dns: access.provider,
    access,
    resolvers: own?.resolver ? [own.resolver] : undefined,
    // The local cloud's PowerDNS is the zone's only server: nothing to propagate.
    disablePropagationCheck: Boolean(own?.resolver),
    serverCaFile,
    trustedRoot: own?.rootPem ?? undefined,
    renewDays: d.tls.renewDays,
    force,
  });
  // The root a client must trust (a test server's changes at its every start: kept with the certificate).
  const ca = own?.rootPem ?? issued.issuer;
  return {
    tls: { chain: issued.chain, key: issued.key, ca },
    renewed: issued.renewed,
    serial: issued.serial,
    notAfter: issued.notAfter,
    server,
  };
}

/** Whether a stored certificate came from ACME (its issuer is not a local CA of ours). */
function isAcme(tls: { chain: string }): boolean {
  return !new X509Certificate(tls.chain).issuer.includes('ADT local CA');
}

/** The file a visitor's client must trust: the local CA's certificate, or the ACME server's root. */
export function trustAnchorFile(c: Pick<TlsContext, 'd' | 'state'>): string {
  return c.d.tls.mode === 'acme' ? c.state.acmeRootFile : join(c.state.caDir, 'ca.crt');
}

/**
 * Makes sure the datastore holds a valid certificate for the site: the first deploy issues it, a
 * re-run keeps it (and, with ACME, renews it when due, or `force`d). Returns a line for the progress
 * output and what it did.
 */
export async function ensureSiteCertificate(
  c: TlsContext,
  store: ConfigStore,
  force = false,
): Promise<{ line: string; renewed: boolean; serial: string; notAfter: Date }> {
  const d = c.d;
  const current = await store.get(keys.siteTls);
  if (d.tls.mode === 'local-ca') {
    if (current && !isAcme(current)) {
      const info = new X509Certificate(current.chain);
      return {
        line: `TLS certificate for ${d.host} from the local CA (kept)`,
        renewed: false,
        serial: info.serialNumber,
        notAfter: new Date(info.validTo),
      };
    }
    const runner = c.runner ?? execaRunner({ timeoutMs: 60_000 });
    const ca = await ensureCa(runner, c.state.caDir, `ADT local CA (${d.buildId})`);
    const issued = await issueCertificate(runner, ca, join(c.state.dir, 'tls'), [d.host]);
    const chain = readFileSync(issued.chainFile, 'utf8');
    await store.put(keys.siteTls, { chain, key: readFileSync(issued.keyFile, 'utf8'), ca: readFileSync(ca.certFile, 'utf8') });
    const info = new X509Certificate(chain);
    return {
      line: `TLS certificate for ${d.host} from the local CA ${ca.certFile}`,
      renewed: true,
      serial: info.serialNumber,
      notAfter: new Date(info.validTo),
    };
  }
  const r = await acme(c, [d.host], force);
  await c.state.ensureDir();
  writeFileSync(c.state.acmeRootFile, r.tls.ca, { mode: 0o644 });
  // A re-run that renewed nothing but finds another certificate stored (local-ca before) installs lego's.
  if (r.renewed || !current || current.chain !== r.tls.chain) await store.put(keys.siteTls, r.tls);
  return {
    line:
      `TLS certificate for ${d.host} by ACME from ${r.server} (DNS-01): ${r.renewed ? 'issued' : 'kept'}, ` +
      `serial ${r.serial}, valid until ${r.notAfter.toISOString()}`,
    renewed: r.renewed,
    serial: r.serial,
    notAfter: r.notAfter,
  };
}

/**
 * WEB_FIREWALL=auth: the sign-in host's certificate, kept with the authentication server's
 * secrets (encrypted with its own key): from the build's local CA (issued once), or with TLS=acme by
 * ACME like the site's (renewed when due, or `force`d). The signing secret is made once and kept.
 * Returns what the authentication server needs to check itself (`ca`) and a progress line.
 */
export async function ensureAuthCertificate(
  c: TlsContext,
  authStore: ConfigStore,
  force = false,
): Promise<{ line: string; ca: string; renewed: boolean; serial: string; notAfter: Date }> {
  const host = c.d.auth!.host;
  // Secrets its key no longer decrypts (auth.key was lost) are replaced; any other error stops here.
  const current = await authStore.get(keys.authSecrets).catch((e: { code?: string }) => {
    if (e.code === 'DECRYPT_FAILED') return null;
    throw e;
  });
  const secret = current?.secret ?? randomBytes(32).toString('hex');
  if (c.d.tls.mode === 'local-ca') {
    const runner = c.runner ?? execaRunner({ timeoutMs: 60_000 });
    const ca = await ensureCa(runner, c.state.caDir, `ADT local CA (${c.d.buildId})`);
    const caPem = readFileSync(ca.certFile, 'utf8');
    let tls = current && !isAcme(current.tls) ? current.tls : null;
    const issue = !tls;
    if (!tls) {
      const issued = await issueCertificate(runner, ca, join(c.state.dir, 'tls-auth'), [host]);
      tls = { chain: readFileSync(issued.chainFile, 'utf8'), key: readFileSync(issued.keyFile, 'utf8') };
      await authStore.put(keys.authSecrets, { secret, tls });
    }
    const info = new X509Certificate(tls.chain);
    return {
      line: `certificate for ${host} from the local CA (${issue ? 'issued' : 'kept'})`,
      ca: caPem,
      renewed: issue,
      serial: info.serialNumber,
      notAfter: new Date(info.validTo),
    };
  }
  const r = await acme(c, [host], force);
  if (r.renewed || !current || current.tls.chain !== r.tls.chain) {
    await authStore.put(keys.authSecrets, { secret, tls: { chain: r.tls.chain, key: r.tls.key } });
  }
  return {
    line: `certificate for ${host} by ACME: ${r.renewed ? 'issued' : 'kept'}, serial ${r.serial}, valid until ${r.notAfter.toISOString()}`,
    ca: r.tls.ca,
    renewed: r.renewed,
    serial: r.serial,
    notAfter: r.notAfter,
  };
}

export interface RenewSummary {
  renewed: boolean;
  serial: string;
  notAfter: string;
  webservers: { name: string; serving: string | null }[];
  auth: { renewed: boolean; serial: string; notAfter: string; servers: { name: string; serving: string | null }[] } | null;
}

/** The serial of the certificate a server serves for `host` at `ip`:443 (bounded). */
function servedSerial(ip: string, host: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: ip, port: 443, servername: host, rejectUnauthorized: false, timeout: timeoutMs }, () => {
      const serial = s.getPeerX509Certificate()?.serialNumber ?? '';
      s.destroy();
      resolve(serial);
    });
    s.on('timeout', () => s.destroy(new Error(`no TLS answer from ${ip}:443 within ${timeoutMs} ms`)));
    s.on('error', reject);
  });
}

/** Waits (bounded: 120 s for all) until each server serves certificate `serial` for `host`; the serial each serves. */
async function waitUntilServed(
  servers: { what: string; name: string; ip: string }[],
  host: string,
  serial: string,
  hint: string,
  logOf: (name: string) => Promise<string> = async () => '',
) {
  const serving: Record<string, string> = {};
  const deadline = Date.now() + 120_000;
  for (const s of servers) {
    await pollUntil(
      async () => {
        serving[s.name] = await servedSerial(s.ip, host).catch(() => '');
        return serving[s.name] === serial;
      },
      { timeoutMs: Math.max(1, deadline - Date.now()), intervalMs: 500, what: `${s.what} to serve certificate ${serial}` },
    ).catch(async () => {
      // What the server says about it (the end of its sync's log), when it can be read.
      const log = await logOf(s.name).catch(() => '');
      throw new AdtError(
        'NOT_INSTALLED',
        `${s.what} still serves certificate ${serving[s.name] || '(none)'} after 120 s, not ${serial}: ${hint}` +
          (log ? `; its log ends:\n${log}` : ''),
        {
          pkg: 'fleet',
          driver: 'tls',
        },
      );
    });
  }
  return serving;
}

/**
 * Renews the site's certificate by ACME when due (or `force`d), stores it encrypted; every
 * webserver installs it within about 10 s. With WEB_FIREWALL=auth, the sign-in host's too. With
 * `wait`, returns once every webserver (and authentication server) serves the new one.
 */
export async function renewCertificates(f: Fleet, o: { force: boolean; wait: boolean }): Promise<RenewSummary> {
  const d = f.d;
  const c: TlsContext = { d, state: f.state, kit: f.kit, certifier: f.certifier };
  const site = await ensureSiteCertificate(c, f.store, o.force);
  const webservers = await f.kit.compute.list({ buildId: d.buildId, role: 'webserver' });
  const at = (s: { privateIp: string | null; publicIp: string | null }) => (f.kit.privateCidr ? s.privateIp : s.publicIp) ?? s.publicIp!;
  const serving =
    o.wait && site.renewed
      ? await waitUntilServed(
          webservers.map((w) => ({ what: `webserver ${w.name}`, name: w.name, ip: at(w) })),
          d.host,
          site.serial,
          'see /var/log/adt/certificate.log on it (roles/build/ExecuteOnWebserver -- cat /var/log/adt/certificate.log)',
          async (name) => {
            const w = webservers.filter((x) => x.name === name);
            await f.ssh.pin(f.store, w);
            const r = await f.ssh.exec(w[0]!, ['tail', '-n', '8', '/var/log/adt/certificate.log'], { timeoutMs: 20_000 });
            return r.stdout.trim();
          },
        )
      : {};
  let auth: RenewSummary['auth'] = null;
  if (d.auth) {
    const authStore = f.storeWithKey(await f.state.authKey());
    try {
      const cert = await ensureAuthCertificate(c, authStore, o.force);
      const settings = await f.store.get(keys.auth);
      if (settings && settings.ca !== cert.ca) await f.store.put(keys.auth, { ...settings, ca: cert.ca });
      const servers = await f.kit.compute.list({ buildId: d.buildId, role: 'auth' });
      const s =
        o.wait && cert.renewed
          ? await waitUntilServed(
              servers.map((x) => ({ what: `authentication server ${x.name}`, name: x.name, ip: x.publicIp! })),
              d.auth.host,
              cert.serial,
              'see /var/log/adt/auth.log on it (roles/build/ExecuteOnAuth -- cat /var/log/adt/auth.log)',
            )
          : {};
      auth = {
        renewed: cert.renewed,
        serial: cert.serial,
        notAfter: cert.notAfter.toISOString(),
        servers: servers.map((x) => ({ name: x.name, serving: s[x.name] ?? null })),
      };
    } finally {
      await authStore.driver.dispose?.();
    }
  }
  return {
    renewed: site.renewed,
    serial: site.serial,
    notAfter: site.notAfter.toISOString(),
    webservers: webservers.map((w) => ({ name: w.name, serving: serving[w.name] ?? null })),
    auth,
  };
}
