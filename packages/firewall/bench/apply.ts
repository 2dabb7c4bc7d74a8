/**
 * Applying a policy with 500 source addresses (500 authorised clients on a webserver): our atomic
 * apply (one iptables-restore per family) against the original's way (one `ufw allow` process per
 * rule), in the same local-cloud server, in the same run; and the time of a reconcile when nothing
 * changed (the fingerprint check only).
 *
 * The server boots from the firewall tests' image with ufw and iptables (the stock image has
 * neither; made once per machine, see test/fixtures/cloud.ts). Every command runs inside the
 * server through the cloud's console (nsenter), for ours and for ufw alike.
 *
 * Run: npm run bench -w @adt/firewall   (or: npx tsx packages/firewall/bench/apply.ts [--sources N] [--json])
 */
import { rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stopMirror } from '@adt/localcloud/services/mirror';
import { computePolicies, fingerprint, reconcile, staticFleetSource, type FleetSnapshot } from '../src/index.ts';
import { iptablesBackend } from '../src/backends/iptables.ts';
import { ufwRuleArgvs } from '../src/backends/ufw.ts';
import { testCloud } from '../test/fixtures/cloud.ts';

const { values } = parseArgs({ options: { sources: { type: 'string', default: '500' }, json: { type: 'boolean' } } });
const n = Number(values.sources);
if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new Error(`--sources ${values.sources}: 1-10000`);
// Fixed places (a run that died is cleaned up by the next one).
const BASE = join(tmpdir(), 'adt-bench-tbf');
const MIRROR_DIR = join(BASE, 'mirror');
const tc = await testCloud({
  cloudId: 'tbf',
  stateDir: '/var/lib/adt-local/bench-tbf',
  publicCidr: '198.19.26.0/24',
  privateCidr: '198.19.27.0/24',
  mirrorDir: MIRROR_DIR,
});
const cloud = tc.cloud;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

try {
  await stopMirror(MIRROR_DIR);
  await cloud.teardown();
  await cloud.ensureNetwork();
  const s = await tc.server('webserver', await tc.image(['iptables', 'ufw']));
  const runner = tc.runner(s.id, 120_000);
  // n client addresses from 198.19.128.0/17 (never routed anywhere: just sources in rules).
  const clients = Array.from({ length: n }, (_, i) => ({
    ip: `198.19.${128 + Math.floor(i / 250)}.${(i % 250) + 1}`,
    expiresAt: '2099-01-01T00:00:00Z',
  }));
  const fleet: FleetSnapshot = {
    buildMachine: [cloud.buildMachine.publicIp],
    webservers: [s.privateIp!],
    autoscalers: [],
    databases: [],
    auth: [],
    authorisedClients: clients,
  };
  const policy = computePolicies(fleet, { webMode: 'auth' }).webserver;
  const rules = ufwRuleArgvs(policy);

  // Ours: the whole policy, atomically.
  const backend = iptablesBackend({ runner });
  let t0 = process.hrtime.bigint();
  await backend.apply(policy, fingerprint(policy));
  const ours = ms(t0);

  // Nothing changed: fingerprint check only (median of 20).
  const noChange: number[] = [];
  for (let i = 0; i < 20; i++) {
    t0 = process.hrtime.bigint();
    const r = await reconcile({ source: staticFleetSource(fleet), role: 'webserver', backend, policy: { webMode: 'auth' } });
    noChange.push(ms(t0));
    if (r.changed) throw new Error('a no-change reconcile applied something');
  }
  noChange.sort((a, b) => a - b);

  // What every command run in the server costs on top (nsenter, setpriv, env: the cloud's console), median of 20:
  // on a host the toolkit runs iptables directly, without it.
  const consoleOnly: number[] = [];
  for (let i = 0; i < 20; i++) {
    t0 = process.hrtime.bigint();
    await runner.run(['true']);
    consoleOnly.push(ms(t0));
  }
  consoleOnly.sort((a, b) => a - b);

  // The original's way: one ufw process per rule (ufw enabled first, as it is on a host).
  await runner.run(['ufw', '--force', 'enable']);
  t0 = process.hrtime.bigint();
  for (const argv of rules) await runner.run(argv, { timeoutMs: 120_000 });
  const ufw = ms(t0);

  const out = {
    sources: n,
    rules: rules.length,
    oursMs: ours,
    ufwMs: ufw,
    ratio: ufw / ours,
    noChangeMedianMs: noChange[10]!,
    consoleMedianMs: consoleOnly[10]!,
    machine: `${cpus().length} x ${cpus()[0]?.model.trim()}`,
  };
  if (values.json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(`Firewall apply, ${n} source addresses (${rules.length} ufw rules), in one local-cloud server; ${out.machine}\n`);
    console.log('| work | time | ratio |');
    console.log('|---|---:|---:|');
    console.log(`| ours: atomic apply (iptables-restore, v4 + v6) | ${ours.toFixed(0)} ms | |`);
    console.log(`| original's way: one \`ufw allow\` per rule | ${(ufw / 1000).toFixed(1)} s | **${(ufw / ours).toFixed(0)}x** slower |`);
    console.log(`| ours: reconcile when nothing changed (median of 20) | ${noChange[10]!.toFixed(1)} ms | |`);
    console.log(
      `| of which the cloud's console, per command (\`true\` in the server, median of 20) | ${consoleOnly[10]!.toFixed(1)} ms | |`,
    );
  }
} finally {
  await cloud.teardown();
  await stopMirror(MIRROR_DIR);
  await rm(BASE, { recursive: true, force: true });
}
