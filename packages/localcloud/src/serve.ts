/**
 * The local cloud's daemon: `serve.ts supervise <config>` keeps `serve.ts worker <config>` running
 * (restarting it with a growing pause if it dies); the worker brings the cloud up (its networks),
 * starts or finds its services (package mirror, PowerDNS: detached, they outlive a worker restart;
 * the embedded S3 server and the mail catcher: in the worker) and serves the cloud's API.
 * `DELETE /v1/cloud` tears the whole cloud down (servers must be gone) and ends both processes.
 * The config file (0600) names everything; no secret is on a command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '@adt/core';
import { serveLocalApi, type CloudServices } from './api.ts';
import { LocalCloud } from './cloud.ts';
import { codeVersion, type LocalCloudConfig } from './daemon.ts';
import { TokenStore } from './tokens.ts';
import { startEmulators } from './emulators.ts';
import { startMailCatcher } from './services/mail.ts';
import { startMirror, stopMirror } from './services/mirror.ts';
import { attachPebble, startPebble } from './services/pebble.ts';
import { attachPowerDns, startPowerDns } from './services/powerdns.ts';
import { EMBEDDED_CREDENTIALS, startEmbeddedS3 } from './services/s3.ts';

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
const [mode, file] = process.argv.slice(2);
if ((mode !== 'supervise' && mode !== 'worker') || !file) {
  process.stderr.write('usage: serve.ts supervise|worker <daemon-config.json>\n');
  process.exit(2);
}
const config = JSON.parse(readFileSync(file, 'utf8')) as LocalCloudConfig;
const TEARDOWN_EXIT = 42;

async function supervise(): Promise<void> {
  let child: ChildProcess | null = null;
  let stopping = false;
  for (const s of ['SIGTERM', 'SIGINT'] as const) {
    process.on(s, () => {
      stopping = true;
      child?.kill('SIGTERM');
    });
  }
  let pause = 1000;
  while (!stopping) {
    const started = Date.now();
    child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'worker', file!], { stdio: 'inherit' });
    const code = await new Promise<number | null>((resolve) => child!.on('exit', (c) => resolve(c)));
    if (stopping || code === TEARDOWN_EXIT) break;
    if (Date.now() - started > 300_000) pause = 1000;
    log(`the local cloud's worker exited (${code}); restarting in ${pause / 1000} s`);
    await sleep(pause);
    pause = Math.min(pause * 2, 60_000);
  }
  process.exit(0);
}

async function worker(): Promise<void> {
  const buildMachine = { publicIp: config.publicCidr.replace(/\.0\/24$/, '.1'), privateIp: config.privateCidr.replace(/\.0\/24$/, '.1') };
  const mirrorProxy = `http://${buildMachine.privateIp}:${config.ports.mirror}`;
  const cloud = new LocalCloud({
    cloudId: config.cloudId,
    stateDir: config.stateDir,
    publicCidr: config.publicCidr,
    privateCidr: config.privateCidr,
    imageDir: config.imageDir,
    aptProxy: mirrorProxy,
  });
  await cloud.ensureNetwork();
  const stuck = await cloud.recover();
  if (stuck.length) log(`servers left half-made by an earlier run, now in error: ${stuck.join(', ')}`);
  const mirror = await startMirror({ dataDir: config.dirs.mirror, address: buildMachine.privateIp, port: config.ports.mirror });
  log(`package mirror on ${mirror.proxy} (pid ${mirror.pid})`);
  const pdns = await startPowerDns({
    dataDir: config.dirs.dns,
    listenAddress: buildMachine.publicIp,
    dnsPort: config.ports.dns,
    apiAddress: buildMachine.privateIp,
    // Autoscalers change the site's records through it, from the private network.
    apiAllowFrom: [config.privateCidr, '127.0.0.0/8'],
  });
  log(`PowerDNS on ${pdns.dnsAddress}:${pdns.dnsPort}, API ${pdns.apiUrl} (pid ${pdns.pid})`);
  mkdirSync(join(config.dirs.s3, 'data'), { recursive: true, mode: 0o700 });
  const s3 = await startEmbeddedS3({ directory: join(config.dirs.s3, 'data'), address: buildMachine.privateIp, port: config.ports.s3 });
  log(`embedded S3 on ${s3.endpoint}`);
  const messages = join(config.dirs.mail, 'messages');
  mkdirSync(messages, { recursive: true, mode: 0o700 });
  let n = 0;
  const mail = await startMailCatcher(buildMachine.privateIp, config.ports.smtp, 100, (m) => {
    const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}-${++n}.eml`;
    writeFileSync(join(messages, name), `From: ${m.from}\nTo: ${m.to}\nSubject: ${m.subject}\n\n${m.text}`, { mode: 0o600 });
  });
  log(`mail catcher on ${buildMachine.privateIp}:${mail.port}, messages in ${messages}`);
  const dnsServer = `${pdns.dnsAddress}:${pdns.dnsPort}`;
  const services: CloudServices = {
    s3: { endpoint: s3.endpoint, region: s3.region, ...EMBEDDED_CREDENTIALS },
    dns: { apiUrl: pdns.apiUrl, apiKey: (await readFile(pdns.apiKeyFile, 'utf8')).trim(), nameserver: pdns.dnsAddress, port: pdns.dnsPort },
    smtp: { host: buildMachine.privateIp, port: mail.port, mailDir: messages },
    mirror: { proxy: mirror.proxy },
    async acme() {
      // Started on first use (TLS=acme): its root changes at every start, so it is kept running.
      const pebble = await startPebble({ dataDir: config.dirs.acme, dnsServer });
      return {
        directoryUrl: pebble.directoryUrl,
        httpsCaPem: await readFile(pebble.httpsCaFile, 'utf8'),
        rootPem: await pebble.rootPem(),
        dnsServer,
      };
    },
  };
  const token = (await readFile(join(config.stateDir, 'api', 'account.token'), 'utf8')).trim();
  const tokens = new TokenStore(token, join(config.stateDir, 'api', 'tokens.json'));
  let tearingDown = false;
  const emulators = startEmulators({
    cloud,
    apiUrl: `http://${buildMachine.privateIp}:${config.ports.api}`,
    dns: { apiUrl: services.dns.apiUrl, apiKey: services.dns.apiKey },
  });
  const api = await serveLocalApi({
    cloud,
    tokens,
    services,
    emulators,
    log,
    version: codeVersion(),
    address: buildMachine.privateIp,
    port: config.ports.api,
    onTeardown: () => {
      tearingDown = true;
      void teardown().then(
        () => process.exit(TEARDOWN_EXIT),
        (e: Error) => {
          log(`teardown failed: ${e.message}`);
          process.exit(1);
        },
      );
    },
  });
  log(`local cloud "${config.cloudId}" API on ${api.url} (public ${config.publicCidr}, private ${config.privateCidr})`);

  async function teardown() {
    log('tearing the cloud down (no server left)');
    await api.close();
    await Promise.all([s3.stop(), mail.close()]);
    await (await attachPebble(config.dirs.acme))?.stop();
    await (await attachPowerDns(config.dirs.dns))?.stop();
    await stopMirror(config.dirs.mirror);
    for (const d of [config.dirs.dns, config.dirs.acme, config.dirs.mail, config.dirs.mirror])
      await rm(d, { recursive: true, force: true });
    // Buckets that remain (backups, or config buckets kept by --keep-bucket) stay for the next start.
    const data = join(config.dirs.s3, 'data');
    if (!existsSync(data) || !readdirSync(data).length) await rm(config.dirs.s3, { recursive: true, force: true });
    // Last: the cloud itself and its own state (its pid file and tokens with it).
    await cloud.teardown();
  }

  for (const s of ['SIGTERM', 'SIGINT'] as const) {
    process.on(s, () => {
      if (tearingDown) return;
      void Promise.all([api.close(), s3.stop(), mail.close()]).finally(() => process.exit(0));
    });
  }
  await writeFile(
    join(config.stateDir, 'daemon.json'),
    JSON.stringify({ pid: process.pid, url: api.url, startedAt: new Date().toISOString() }),
    {
      mode: 0o600,
    },
  );
}

if (mode === 'supervise') await supervise();
else
  await worker().catch((e: Error) => {
    log(`the local cloud could not start: ${e.stack ?? e.message}`);
    process.exit(1);
  });
