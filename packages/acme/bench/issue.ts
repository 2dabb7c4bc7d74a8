/**
 * A certificate by DNS-01 against Debian's pebble through our PowerDNS, on loopback, same run:
 * - ours: `obtainCertificate` as the build machine runs it on the local provider (lego, PowerDNS's
 *   API, no propagation check: the record is written to the one authoritative server, which
 *   pebble asks); then the daily renewal check when nothing is due, and a forced renewal;
 * - the original's way: the same lego `run` with the options its ObtainSSLCertificate.sh passes
 *   that Debian's lego 4.9.1 has (`--dns-timeout=120`). Its script also passes
 *   `--dns.propagation-wait 60s`, a fixed 60 s sleep per issue that this lego has no flag for: it is
 *   added to its column as a constant, and said so. Its propagation check stays off here as in ours
 *   (lego would look the zone's name servers up through the machine's resolver, off loopback).
 *
 * Either lego run takes about 1.5 s, or about 6.5 s when lego's first look at the authorization
 * comes before pebble has validated it (lego then waits 5 s; pebble sends no Retry-After): so the
 * minimum is shown with the median, and the same lego's two columns differ by that chance only.
 *
 * Run: npm run bench -w @adt/acme   (or: npx tsx packages/acme/bench/issue.ts [--rounds N] [--json])
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execaRunner } from '@adt/core';
import { startPowerDns, type PowerDnsServer } from '@adt/localcloud/services/powerdns';
import { startPebble, type Pebble } from '@adt/localcloud/services/pebble';
import powerdnsDriver from '@adt/providers/drivers/powerdns';
import { legoArgv, legoEnv, obtainCertificate, type ObtainOptions } from '../src/index.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, json: { type: 'boolean' } } });
const rounds = Math.max(1, Number(values.rounds));
const ORIGINAL_FIXED_WAIT_MS = 60_000;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = await mkdtemp(join(tmpdir(), 'adt-bench-acme-'));
let pdns: PowerDnsServer | undefined;
let pebble: Pebble | undefined;
try {
  pdns = await startPowerDns({ dataDir: join(dir, 'pdns'), dnsPort: 0 });
  await powerdnsDriver({ apiUrl: pdns.apiUrl, apiKeyFile: pdns.apiKeyFile, zone: 'acme.test' }).ensureZone('acme.test');
  pebble = await startPebble({ dataDir: join(dir, 'pebble'), dnsServer: `${pdns.dnsAddress}:${pdns.dnsPort}` });
  const runner = execaRunner();
  const base: ObtainOptions = {
    server: pebble.directoryUrl,
    email: 'ops@acme.test',
    domains: ['www.acme.test'],
    path: join(dir, 'lego'),
    dns: 'pdns',
    resolvers: [`${pdns.dnsAddress}:${pdns.dnsPort}`],
    disablePropagationCheck: true,
    access: { provider: 'pdns', apiUrl: pdns.apiUrl, apiKey: (await readFile(pdns.apiKeyFile, 'utf8')).trim() },
    serverCaFile: pebble.httpsCaFile,
    runner,
  };
  const issue: number[] = [];
  const check: number[] = [];
  const forced: number[] = [];
  const original: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const o = { ...base, path: join(dir, `ours-${r}`), domains: [`www${r}.acme.test`] };
    let t0 = process.hrtime.bigint();
    await obtainCertificate(o);
    issue.push(ms(t0));
    t0 = process.hrtime.bigint();
    if ((await obtainCertificate(o)).renewed) throw new Error('a certificate that is not due was renewed');
    check.push(ms(t0));
    t0 = process.hrtime.bigint();
    if (!(await obtainCertificate({ ...o, force: true })).renewed) throw new Error('a forced renewal kept the certificate');
    forced.push(ms(t0));

    // The original's way (its flags that this lego has), another name so nothing is reused.
    const orig = { ...base, path: join(dir, `original-${r}`), domains: [`orig${r}.acme.test`] };
    const legoRun = legoArgv(orig, 'run');
    if (legoRun.at(-1) !== 'run') throw new Error("lego's argv should end with its action");
    const argv: [string, ...string[]] = [legoRun[0], ...legoRun.slice(1, -1), '--dns-timeout', '120', 'run'];
    t0 = process.hrtime.bigint();
    await runner.run(argv, { env: legoEnv(orig.access, orig.serverCaFile), timeoutMs: 300_000 });
    original.push(ms(t0));
  }
  const out = {
    rounds,
    oursIssueMs: median(issue),
    oursIssueMinMs: Math.min(...issue),
    originalLegoMinMs: Math.min(...original),
    oursNotDueMs: median(check),
    oursForcedRenewalMs: median(forced),
    originalLegoMs: median(original),
    originalWithFixedWaitMs: median(original) + ORIGINAL_FIXED_WAIT_MS,
    ratio: (median(original) + ORIGINAL_FIXED_WAIT_MS) / median(issue),
    ratioWithoutFixedWait: median(original) / median(issue),
    machine: `${cpus().length} x ${cpus()[0]?.model.trim()}`,
  };
  if (values.json) console.log(JSON.stringify(out, null, 2));
  else {
    const s = (x: number) => `${(x / 1000).toFixed(2).padStart(7)} s`;
    console.log(`A certificate by DNS-01 (lego, pebble, PowerDNS on loopback), median of ${rounds}, ${out.machine}`);
    console.log(`  ours: first issue                                  ${s(out.oursIssueMs)}   (min ${s(out.oursIssueMinMs).trim()})`);
    console.log(`  ours: renewal check, nothing due                   ${s(out.oursNotDueMs)}`);
    console.log(`  ours: forced renewal                               ${s(out.oursForcedRenewalMs)}`);
    console.log(`  original's way: lego run with its flags            ${s(out.originalLegoMs)}   (min ${s(out.originalLegoMinMs).trim()})`);
    console.log(`  original's way + its fixed 60 s propagation wait   ${s(out.originalWithFixedWaitMs)}   ${out.ratio.toFixed(1)}x ours`);
  }
} finally {
  await pebble?.stop();
  await pdns?.stop();
  await rm(dir, { recursive: true, force: true });
}
