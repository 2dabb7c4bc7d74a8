/**
 * deploy: the main entry of the toolkit.
 *
 * Today (foundation stage) it validates the deployment file, starts or reuses the embedded S3 server
 * of the local provider, creates and empties the deployment's config bucket, generates the
 * deployment's datastore key, and prints the plan of the fleet. Creating the servers comes with the
 * local cloud and the roles (see README "Status").
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseEnv } from 'dotenv';
import { AdtError } from '@adt/core';
import { ConfigStore, configBucketName, generateSecretKey, keys, validateBuildId, siteHost } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { runMain, usage } from '@adt/role-common';
import { ensureS3Daemon } from './s3-daemon.ts';

const HELP = `usage: npx zx roles/build/deploy.mjs [--config FILE] [--dry-run] [--json]

  --config FILE   deployment file (dotenv format); see roles/build/deployment.example.env
  --dry-run       print the plan, change nothing
  --json          machine-readable output on stdout`;

interface Deployment {
  provider: 'local';
  siteUrl: string;
  buildId: string;
  mode: 'development' | 'production';
  stateDir: string;
  s3Address: string;
  s3Port: number;
}

/** Every problem in the file at once, each naming the variable, the value and what is allowed. */
function readDeployment(file: string | undefined, env: NodeJS.ProcessEnv): Deployment {
  let vars: Record<string, string> = {};
  if (file) {
    if (!existsSync(file)) throw usage(`--config: ${file} does not exist`);
    vars = parseEnv(readFileSync(file));
  }
  const get = (k: string, d: string) => vars[k] ?? env[`ADT_${k}`] ?? d;
  const problems: string[] = [];
  const check = (name: string, value: string, ok: boolean, allowed: string) => {
    if (!ok) problems.push(`${name}="${value}": ${allowed}`);
  };
  const provider = get('PROVIDER', 'local');
  check('PROVIDER', provider, provider === 'local', 'only "local" for now (the cloud drivers come later)');
  const siteUrl = get('SITE_URL', 'www.adt.test');
  try {
    siteHost(siteUrl);
  } catch {
    problems.push(`SITE_URL="${siteUrl}": a DNS host name such as www.example.com`);
  }
  const buildId = get('BUILD_ID', 'dev1');
  try {
    validateBuildId(buildId);
  } catch {
    problems.push(`BUILD_ID="${buildId}": 1-24 lowercase letters and digits`);
  }
  const mode = get('MODE', 'development');
  check('MODE', mode, mode === 'development' || mode === 'production', '"development" or "production"');
  const s3Port = Number(get('S3_PORT', '9700'));
  check('S3_PORT', String(s3Port), Number.isInteger(s3Port) && s3Port >= 1024 && s3Port <= 65535, 'a port number from 1024 to 65535');
  const s3Address = get('S3_ADDRESS', '127.0.0.1');
  check('S3_ADDRESS', s3Address, /^127\.\d+\.\d+\.\d+$|^198\.1[89]\.\d+\.\d+$/.test(s3Address), 'a loopback address or one of the local cloud (198.18.0.0/15)');
  const known = new Set(['PROVIDER', 'SITE_URL', 'BUILD_ID', 'MODE', 'S3_PORT', 'S3_ADDRESS', 'STATE_DIR']);
  for (const k of Object.keys(vars)) if (!known.has(k)) problems.push(`${k}: unknown variable (known: ${[...known].join(', ')})`);
  if (problems.length) throw usage(`${file ?? 'deployment settings'}: ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);
  return { provider: 'local', siteUrl, buildId, mode: mode as Deployment['mode'], stateDir: get('STATE_DIR', '/var/lib/adt-local'), s3Address, s3Port };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' } }, strict: false });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const started = Date.now();
  const d = readDeployment(values.config as string | undefined, process.env);
  const json = Boolean(values.json);
  const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
  const bucket = configBucketName(d.siteUrl, d.buildId);
  const plan = {
    provider: d.provider,
    mode: d.mode,
    site: `https://${siteHost(d.siteUrl)}/`,
    buildId: d.buildId,
    configBucket: bucket,
    s3Endpoint: `http://${d.s3Address}:${d.s3Port}`,
    servers: d.mode === 'development' ? ['database', 'webserver'] : ['autoscaler', 'database', 'webserver (x initial count)'],
  };
  if (values['dry-run']) {
    if (json) process.stdout.write(`${JSON.stringify({ dryRun: true, plan }, null, 2)}\n`);
    else say(`Plan (dry run, nothing changed):\n  site ${plan.site}, build ${plan.buildId}, mode ${plan.mode}, provider ${plan.provider}\n  config bucket ${bucket} on the embedded S3 at ${plan.s3Endpoint}\n  servers: ${plan.servers.join(', ')}`);
    return 0;
  }

  if (process.getuid?.() !== 0) throw new AdtError('NOT_ROOT', 'the local provider needs root (it creates network namespaces): run as root', { pkg: 'build', exitCode: 2 });
  say(`[1/3] embedded S3 server`);
  const s3 = await ensureS3Daemon({ stateDir: join(d.stateDir, 's3'), address: d.s3Address, port: d.s3Port });
  say(`      ${s3.started ? 'started' : 'already running'} at ${s3.endpoint} (pid ${s3.pid}, log ${s3.log})`);

  say(`[2/3] config bucket ${bucket}`);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const buildDir = join(d.stateDir, 'builds', d.buildId);
  mkdirSync(buildDir, { recursive: true, mode: 0o700 });
  const keyFile = join(buildDir, 'datastore.key');
  const secretKey = generateSecretKey();
  const store = new ConfigStore({ driver: s3Driver({ bucket, endpoint: s3.endpoint, credentials: s3.credentials }), secretKey, writeBudget: null });
  await store.ensureBucket();
  const removed = await store.emptyBucket();
  writeFileSync(keyFile, secretKey.toString('hex'), { mode: 0o600 });
  await store.put(keys.buildMarkers.key('started'), { at: new Date().toISOString(), by: 'deploy' });
  say(`      ready (emptied ${removed} object(s) of a previous build); deployment key in ${keyFile} (mode 0600)`);

  say(`[3/3] fleet`);
  say(`      to build: ${plan.servers.join(', ')} on the local cloud: not available yet at this stage of the toolkit (see README "Status")`);
  await store.driver.dispose?.();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary = { ...plan, s3Endpoint: s3.endpoint, s3Pid: s3.pid, keyFile, fleetBuilt: false, seconds: Number(seconds) };
  if (json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else say(`\nDone in ${seconds} s: config datastore ready at ${s3.endpoint}/${bucket}; no servers built yet.`);
  return 0;
}

await runMain(main);
