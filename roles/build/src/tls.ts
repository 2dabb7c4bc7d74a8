/**
 * The site's certificate, made by the build machine and kept encrypted in the datastore
 * (`secrets/tls`); every webserver installs it and follows its changes (SyncCertificate).
 *
 * - TLS=local-ca: issued once by the build's local CA.
 * - TLS=acme: by ACME (lego, DNS-01). On the local provider the ACME server is a pebble of this
 *   cloud (STATE_DIR/acme/<cloud id>, on 127.0.0.1) that checks challenges through the cloud's
 *   PowerDNS; lego writes them through PowerDNS's API. Each deploy re-run, and
 *   `roles/build/RenewCertificate`, renews it when it expires within TLS_RENEW_DAYS days.
 *
 *   roles/build/RenewCertificate [--config FILE] [--force] [--wait] [--json]
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join, resolve } from 'node:path';
import { AdtError, execaRunner, sleep } from '@adt/core';
import { generateSecretKey, keys, parseSecretKey, type ConfigStore, type SiteTls } from '@adt/configstore';
import { attachPowerDns } from '@adt/providers';
import { attachPebble, obtainCertificate, startPebble } from '@adt/acme';
import { ensureCa, issueCertificate } from '@adt/webserver';
import { usage } from '@adt/role-common';
import { parseCommandLine } from './cli.ts';
import { readDeployment } from './settings.ts';
import { localEnv, openStore, type LocalEnv } from './local-env.ts';

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) => new AdtError(code, message, { pkg: 'build', driver: 'tls', exitCode });

export function acmeDir(env: LocalEnv): string {
  return join(env.d.stateDir, 'acme', env.d.cloudId);
}

/** The file a visitor's client must trust: the local CA's certificate, or the ACME server's root. */
export function trustAnchorFile(env: LocalEnv): string {
  return env.d.tls.mode === 'acme' ? acmeRootFile(env) : join(env.caDir, 'ca.crt');
}

function acmeRootFile(env: LocalEnv): string {
  return join(env.buildDir, 'acme-root.pem');
}

/**
 * The names on the site's certificate: the site. (The sign-in host of WEB_FIREWALL=auth has a
 * certificate of its own, kept with the authentication server's secrets: ensureAuthCertificate.)
 */
export function certificateNames(env: LocalEnv): string[] {
  return [env.d.host];
}

interface AcmeResult {
  tls: SiteTls;
  renewed: boolean;
  serial: string;
  notAfter: Date;
  server: string;
}

/** Issues or renews a certificate for `names` by ACME through the local cloud's pebble and PowerDNS. */
async function acmeLocal(env: LocalEnv, force: boolean, names = certificateNames(env)): Promise<AcmeResult> {
  const d = env.d;
  const pdns = await attachPowerDns(env.dnsDir);
  if (!pdns) throw fail('NO_DNS', `the local cloud's PowerDNS is not running (${env.dnsDir}): deploy first`);
  const dnsServer = `${pdns.dnsAddress}:${pdns.dnsPort}`;
  const external = d.tls.acmeServer;
  const pebble = external ? null : await startPebble({ dataDir: acmeDir(env), dnsServer, detached: true });
  const server = external ?? pebble!.directoryUrl;
  // pebble's root changes when pebble restarts: a certificate of an earlier root is replaced.
  const root = pebble ? await pebble.rootPem() : undefined;
  const c = await obtainCertificate({
    server,
    email: d.tls.acmeEmail ?? `hostmaster@${env.zone}`,
    domains: names,
    path: join(env.buildDir, 'lego'),
    dns: 'pdns',
    resolvers: [dnsServer],
    disablePropagationCheck: true,
    access: { provider: 'pdns', apiUrl: pdns.apiUrl, apiKey: readFileSync(pdns.apiKeyFile, 'utf8').trim() },
    serverCaFile: pebble?.httpsCaFile,
    trustedRoot: root,
    renewDays: d.tls.renewDays,
    force,
    runner: execaRunner({ timeoutMs: 180_000 }),
  });
  // The root a client must trust (pebble's changes at its every start: kept with the certificate).
  const ca = root ?? c.issuer;
  return { tls: { chain: c.chain, key: c.key, ca }, renewed: c.renewed, serial: c.serial, notAfter: c.notAfter, server };
}

/**
 * Makes sure the datastore holds a valid certificate for the site: the first deploy issues it, a
 * re-run keeps it (and, with ACME, renews it when due). Returns a line for the progress output.
 */
export async function ensureSiteCertificate(env: LocalEnv, store: ConfigStore): Promise<string> {
  const d = env.d;
  const current = await store.get(keys.siteTls);
  if (d.tls.mode === 'local-ca') {
    if (current && !isAcme(current)) return `TLS certificate for ${d.host} from the local CA (kept)`;
    const runner = execaRunner({ timeoutMs: 60_000 });
    const ca = await ensureCa(runner, env.caDir, `ADT local CA (${d.buildId})`);
    const issued = await issueCertificate(runner, ca, join(env.buildDir, 'tls'), [d.host]);
    await store.put(keys.siteTls, {
      chain: readFileSync(issued.chainFile, 'utf8'),
      key: readFileSync(issued.keyFile, 'utf8'),
      ca: readFileSync(ca.certFile, 'utf8'),
    });
    return `TLS certificate for ${d.host} from the local CA ${ca.certFile}`;
  }
  const r = await acmeLocal(env, false);
  writeFileSync(acmeRootFile(env), r.tls.ca, { mode: 0o644 });
  // A re-run that renewed nothing but finds another certificate stored (e.g. local-ca before) installs lego's.
  if (r.renewed || !current || current.chain !== r.tls.chain) await store.put(keys.siteTls, r.tls);
  return `TLS certificate for ${d.host} by ACME from ${r.server} (DNS-01 through PowerDNS): ${r.renewed ? 'issued' : 'kept'}, serial ${r.serial}, valid until ${r.notAfter.toISOString()}`;
}

/**
 * Runs `fn` with the datastore opened with the authentication server's own key (made at the first
 * deploy with WEB_FIREWALL=auth, mode 0600): its secrets are encrypted with it, the only key that
 * server gets.
 */
export async function withAuthStore<T>(env: LocalEnv, fn: (authStore: ConfigStore) => Promise<T>): Promise<T> {
  if (!existsSync(env.authKeyFile)) writeFileSync(env.authKeyFile, generateSecretKey().toString('hex'), { mode: 0o600 });
  const authStore = openStore(env, parseSecretKey(readFileSync(env.authKeyFile, 'utf8'), env.authKeyFile));
  try {
    return await fn(authStore);
  } finally {
    await authStore.driver.dispose?.();
  }
}

/**
 * WEB_FIREWALL=auth: the sign-in host's certificate, kept with the authentication server's
 * secrets (encrypted with its own key): from the build's local CA (issued once), or with TLS=acme
 * by ACME like the site's (renewed when due, or `force`d). The signing secret is made once and
 * kept. Returns what the authentication server needs to check itself (`ca`) and a progress line.
 */
export async function ensureAuthCertificate(
  env: LocalEnv,
  authStore: ConfigStore,
  force = false,
): Promise<{ line: string; ca: string; renewed: boolean; serial: string; notAfter: Date }> {
  const host = env.d.auth!.host;
  // Secrets its key no longer decrypts (auth.key was lost) are replaced; any other error stops here.
  const current = await authStore.get(keys.authSecrets).catch((e: { code?: string }) => {
    if (e.code === 'DECRYPT_FAILED') return null;
    throw e;
  });
  const secret = current?.secret ?? randomBytes(32).toString('hex');
  if (env.d.tls.mode === 'local-ca') {
    const runner = execaRunner({ timeoutMs: 60_000 });
    const ca = await ensureCa(runner, env.caDir, `ADT local CA (${env.d.buildId})`);
    const caPem = readFileSync(ca.certFile, 'utf8');
    // Kept unless absent or from ACME (TLS was acme before).
    let tls = current && !isAcme({ ...current.tls, ca: caPem }) ? current.tls : null;
    const issue = !tls;
    if (!tls) {
      const issued = await issueCertificate(runner, ca, join(env.buildDir, 'tls-auth'), [host]);
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
  const r = await acmeLocal(env, force, [host]);
  if (r.renewed || !current || current.tls.chain !== r.tls.chain)
    await authStore.put(keys.authSecrets, { secret, tls: { chain: r.tls.chain, key: r.tls.key } });
  return {
    line: `certificate for ${host} by ACME: ${r.renewed ? 'issued' : 'kept'}, serial ${r.serial}, valid until ${r.notAfter.toISOString()}`,
    ca: r.tls.ca,
    renewed: r.renewed,
    serial: r.serial,
    notAfter: r.notAfter,
  };
}

/** Whether a stored certificate came from ACME (its issuer is not a local CA of ours). */
function isAcme(tls: SiteTls): boolean {
  return !new X509Certificate(tls.chain).issuer.includes('ADT local CA');
}

/** The serial of the certificate a webserver serves for `host` at `ip`:443 (bounded). */
export function servedSerial(ip: string, host: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: ip, port: 443, servername: host, rejectUnauthorized: false, timeout: timeoutMs }, () => {
      const serial = s.getPeerX509Certificate()?.serialNumber ?? '';
      s.destroy();
      resolve(serial);
    });
    s.on('timeout', () => s.destroy(new Error(`no TLS answer from ${ip}:443 within ${timeoutMs} ms`)));
    s.on('error', reject);
  });
}

const HELP = `usage: roles/build/RenewCertificate [--config FILE] [--force] [--wait] [--json]

Renews the site's certificate by ACME when it expires within TLS_RENEW_DAYS days (--force: now),
stores it encrypted in the datastore; every webserver installs it within about 10 s. With
WEB_FIREWALL=auth, the sign-in host's certificate too (the authentication server installs it
within about 10 s). With --wait, returns once every webserver (and authentication server) serves
the new certificate (bounded: 120 s). Only with TLS=acme.`;

export async function renewCertificate(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    {
      config: { type: 'string' },
      force: { type: 'boolean' },
      wait: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    HELP,
  );
  if (values.help) return (process.stdout.write(`${HELP}\n`), 0);
  const d = readDeployment(values.config);
  if (d.tls.mode !== 'acme')
    throw usage(
      `RenewCertificate: TLS="${d.tls.mode}" in ${d.source}: renewal is for TLS=acme (a local-ca certificate lasts 397 days; a deploy re-run issues a new one when it is gone)`,
    );
  if (d.provider !== 'local') throw usage(`RenewCertificate: PROVIDER=${d.provider}: this version renews on the local provider only`);
  if (process.getuid?.() !== 0) throw fail('NOT_ROOT', 'the local provider needs root: run as root', 2);
  const env = localEnv(d);
  const store = openStore(env);
  try {
    const r = await acmeLocal(env, Boolean(values.force));
    if (r.renewed) {
      await store.put(keys.siteTls, r.tls);
      writeFileSync(acmeRootFile(env), r.tls.ca, { mode: 0o644 });
    }
    const webservers = await env.cloud.list({ buildId: d.buildId, role: 'webserver' });
    // Every webserver's SyncCertificate (every 10 s) installs it and reloads.
    const serving =
      values.wait && r.renewed
        ? await waitUntilServed(
            webservers.map((w) => ({ what: `webserver ${w.name}`, name: w.name, ip: w.privateIp! })),
            d.host,
            r.serial,
            'see /var/log/adt/certificate.log on it (roles/build/ExecuteOnWebserver -- cat /var/log/adt/certificate.log)',
          )
        : {};
    const auth = d.auth ? await renewAuth(env, store, Boolean(values.force), Boolean(values.wait)) : null;
    const summary = {
      renewed: r.renewed,
      serial: r.serial,
      notAfter: r.notAfter.toISOString(),
      server: r.server,
      webservers: webservers.map((w) => ({ name: w.name, serving: serving[w.name] ?? null })),
      auth,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      const notDue = `not due (renewal within ${d.tls.renewDays} days of expiry; --force renews now)`;
      process.stdout.write(`${r.renewed ? 'renewed' : notDue}: certificate ${r.serial} for ${d.host}, valid until ${summary.notAfter}\n`);
      if (values.wait && r.renewed) for (const w of webservers) process.stdout.write(`  ${w.name} serves it\n`);
      else if (r.renewed) process.stdout.write(`  the ${webservers.length} webserver(s) install it within about 10 s\n`);
      if (auth) {
        process.stdout.write(
          `${auth.renewed ? 'renewed' : notDue}: certificate ${auth.serial} for ${d.auth!.host}, valid until ${auth.notAfter}\n`,
        );
        if (auth.renewed)
          process.stdout.write(
            values.wait
              ? `  ${auth.servers.map((x) => x.name).join(', ') || 'no authentication server'} serve(s) it\n`
              : '  the authentication server installs it within about 10 s\n',
          );
      }
    }
    return 0;
  } finally {
    await store.driver.dispose?.();
  }
}

/**
 * Waits (bounded: 120 s for all) until each server serves certificate `serial` for `host` on
 * port 443; returns the serial each one serves, by name.
 */
async function waitUntilServed(
  servers: { what: string; name: string; ip: string }[],
  host: string,
  serial: string,
  hint: string,
): Promise<Record<string, string>> {
  const serving: Record<string, string> = {};
  const deadline = Date.now() + 120_000;
  for (const s of servers) {
    for (;;) {
      serving[s.name] = await servedSerial(s.ip, host).catch(() => '');
      if (serving[s.name] === serial) break;
      if (Date.now() > deadline)
        throw fail(
          'NOT_INSTALLED',
          `${s.what} still serves certificate ${serving[s.name] || '(none)'} after 120 s, not ${serial}: ${hint}`,
        );
      await sleep(500);
    }
  }
  return serving;
}

/**
 * RenewCertificate with WEB_FIREWALL=auth: the sign-in host's certificate too; the root the
 * authentication server checks itself against follows (pebble's changes when pebble restarts).
 * With `wait`, returns once every authentication server serves the new one (bounded: 120 s).
 */
async function renewAuth(env: LocalEnv, store: ConfigStore, force: boolean, wait: boolean) {
  const d = env.d;
  const cert = await withAuthStore(env, (authStore) => ensureAuthCertificate(env, authStore, force));
  const settings = await store.get(keys.auth);
  if (settings && settings.ca !== cert.ca) await store.put(keys.auth, { ...settings, ca: cert.ca });
  const servers = await env.cloud.list({ buildId: d.buildId, role: 'auth' });
  const serving =
    wait && cert.renewed
      ? await waitUntilServed(
          servers.map((s) => ({ what: `authentication server ${s.name}`, name: s.name, ip: s.publicIp! })),
          d.auth!.host,
          cert.serial,
          'see /var/log/adt/auth.log on it (roles/build/ExecuteOnAuth -- cat /var/log/adt/auth.log)',
        )
      : {};
  return {
    renewed: cert.renewed,
    serial: cert.serial,
    notAfter: cert.notAfter.toISOString(),
    servers: servers.map((s) => ({ name: s.name, serving: serving[s.name] ?? null })),
  };
}

/** Stops this cloud's pebble (destroy, when the cloud is torn down). */
export async function stopPebble(env: LocalEnv): Promise<boolean> {
  const p = await attachPebble(acmeDir(env));
  if (!p) return false;
  await p.stop();
  return true;
}

/** Where the build machine's cron entries go (`ADT_CRON_DIR` for tests; default /etc/cron.d). */
export function cronDir(): string {
  return process.env.ADT_CRON_DIR || '/etc/cron.d';
}

/** The cron file of a build's certificate renewal. */
export function renewalCronFile(env: LocalEnv): string {
  return join(cronDir(), `adt-tls-${env.d.buildId}`);
}

/**
 * With TLS=acme, a daily renewal on the build machine (cron; RenewCertificate renews only when the
 * certificate expires within TLS_RENEW_DAYS days). Returns the file written, or null.
 */
export function installRenewalCron(env: LocalEnv): string | null {
  const file = renewalCronFile(env);
  if (env.d.tls.mode !== 'acme') {
    rmSync(file, { force: true });
    return null;
  }
  const root = resolve(import.meta.dirname, '../../..');
  const config = env.d.source === 'defaults' ? '' : ` --config ${env.d.source}`;
  // A minute from the build id, so several builds do not all renew at the same minute.
  const minute = [...env.d.buildId].reduce((a, c) => a + c.charCodeAt(0), 0) % 60;
  if (/\s/.test(env.d.source))
    throw fail('BAD_PATH', `the deployment file's path has spaces, which a cron line cannot carry: move it (${env.d.source})`, 2);
  mkdirSync(cronDir(), { recursive: true });
  writeFileSync(
    file,
    `# Written by the Agile Deployment Toolkit: renew the certificate of ${env.d.host} (build ${env.d.buildId}) when due.\nSHELL=/bin/sh\n${minute} 4 * * * root ${root}/roles/build/RenewCertificate${config} >> /var/log/adt-tls-${env.d.buildId}.log 2>&1\n`,
    { mode: 0o644 },
  );
  return file;
}

/** Removes the renewal's cron file (destroy). */
export function removeRenewalCron(env: LocalEnv): boolean {
  const file = renewalCronFile(env);
  if (!existsSync(file)) return false;
  rmSync(file, { force: true });
  return true;
}
