/**
 * The local cloud for real, in this process, as root: servers in their own namespaces on overlay
 * roots of the stock image, bridges, the native firewall in this machine's iptables, images. This
 * file's cloud is `tlc` on 198.19.10.0/24 (public) and 198.19.11.0/24 (VPC), its state under
 * <tmp>/adt-test-tlc (a fixed place, so a run that died is cleaned up by the next one); each suite
 * destroys its servers in `after`, and the last one tears the cloud down.
 *
 * The firewall suite boots from a test image with iptables (the stock image has none), made once
 * per machine through the cloud's package mirror and kept in the machine's image dir as
 * `adt-test-iptables`; a second run reuses it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { processAlive } from '@adt/core';
import { serverName, type Role } from '@adt/providers';
import { LocalCloud, type LocalServer } from '../src/cloud.ts';
import { startMirror, stopMirror } from '../src/services/mirror.ts';
import { cleanup, freeLowPort, killPids, setup, throws } from '@adt/test-utils';
import {
  connects,
  eventually,
  firstLine,
  onThisMachine,
  rejection,
  run,
  startListener,
  waitListening,
  type Where,
} from './fixtures/helpers.ts';

const BASE = join(tmpdir(), 'adt-test-tlc');
const STATE = join(BASE, 'state');
const MIRROR_DIR = join(BASE, 'mirror');
const MIRROR_PORT = await freeLowPort();
const BUILD = 'tlc';
const options = { cloudId: 'tlc', stateDir: STATE, publicCidr: '198.19.10.0/24', privateCidr: '198.19.11.0/24' };
const cloud = new LocalCloud({ ...options, aptProxy: `http://198.19.11.1:${MIRROR_PORT}` });
const TEST_IMAGE = 'adt-test-iptables';

const inServer =
  (id: string): Where =>
  (argv) =>
    cloud.execArgv(id, argv);
const outsider: Where = (argv) => cloud.outsiderArgv(argv);

/** What the cloud keeps about a server (its PIDs and namespace), from its state file. */
async function record(name: string): Promise<{ n: number; netns: string; pid: number | null; initPid: number | null }> {
  return JSON.parse(await readFile(join(STATE, 'servers', name, 'server.json'), 'utf8'));
}

async function create(
  role: Role,
  userData = '#!/bin/sh\n',
  more: { image?: string; sshKeys?: string[]; buildId?: string } = {},
): Promise<LocalServer> {
  const buildId = more.buildId ?? BUILD;
  return cloud.create({ name: serverName({ role, buildId }), role, buildId, userData, image: more.image, sshKeys: more.sshKeys });
}

/** The user-data's exit code once it ended (bounded wait). */
async function userDataExit(id: string, attempts = 150): Promise<{ log: string; exitCode: number }> {
  return eventually(
    `the user-data of ${id} to end`,
    async () => {
      const c = await cloud.console(id);
      return c.exitCode === null ? null : { log: c.log, exitCode: c.exitCode };
    },
    attempts,
  );
}

async function destroyAll(servers: LocalServer[]): Promise<void> {
  await Promise.all(servers.map((s) => cloud.destroy(s.id)));
}

/** Everything of this cloud in the machine's network view: namespaces, links. */
async function networkView(): Promise<{ netns: string[]; links: string[] }> {
  const netns = (await execa('ip', ['netns', 'list'])).stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('tlc-'));
  const links = (await execa('ip', ['-br', 'link'])).stdout
    .split('\n')
    .map((l) => l.split(/[\s@]/)[0]!)
    .filter((n) => n.startsWith('tlc'));
  return { netns: netns.sort(), links: links.sort() };
}

// ---

interface ServersCtx {
  servers: LocalServer[];
  other: LocalServer;
  pids: number[];
}
const servers = suite<ServersCtx>('local cloud: servers, their addresses and networks');

setup(servers, async (ctx) => {
  ctx.servers = [];
  ctx.pids = [];
  // A run that died leaves nothing in the way (this cloud id and state dir are this file's own).
  await cloud.teardown();
  await stopMirror(MIRROR_DIR);
  await cloud.ensureNetwork();
});

servers.after(async (ctx) => {
  await cleanup('the servers suite', [
    () => killPids(ctx.pids ?? []),
    () => destroyAll([...(ctx.servers ?? []), ctx.other].filter(Boolean)),
  ]);
});

servers('servers from the stock image run their user-data, each with its own name and two addresses', async (ctx) => {
  const userData = '#!/bin/bash\nset -e\necho "booted as $(hostname) ($(cat /etc/hostname))"\nip -4 -o addr show\n';
  const made = await Promise.all([create('webserver', userData), create('webserver', userData), create('database', userData)]);
  ctx.servers = made;
  for (const s of made) assert.is(s.state, 'creating', 'create returns at once');
  for (const s of made) {
    const running = await cloud.waitUntilRunning(s.id, { timeoutMs: 60_000 });
    assert.is(running.state, 'running');
    assert.is(running.image, cloud.images.stockId);
    const { log, exitCode } = await userDataExit(s.id);
    assert.is(exitCode, 0, log);
    assert.match(log, `booted as ${s.name} (${s.name})`);
    assert.match(s.publicIp!, /^198\.19\.10\.\d+$/);
    assert.match(s.privateIp!, /^198\.19\.11\.\d+$/);
    assert.match(log, new RegExp(`eth0\\s+inet ${s.publicIp!.replace(/\./g, '\\.')}/24`));
    assert.match(log, new RegExp(`eth1\\s+inet ${s.privateIp!.replace(/\./g, '\\.')}/24`));
  }
  assert.is(new Set(made.map((s) => s.name)).size, 3);
  assert.is(new Set(made.flatMap((s) => [s.publicIp, s.privateIp])).size, 6, 'six distinct addresses');
});

servers("list finds a build's servers exactly, also through another LocalCloud on the same state", async (ctx) => {
  ctx.other = await create('webserver', '#!/bin/sh\n', { buildId: 'tlcx' });
  const fresh = new LocalCloud(options);
  const names = (xs: { name: string }[]) => xs.map((s) => s.name).sort();
  assert.equal(names(await fresh.list({ buildId: BUILD })), names(ctx.servers));
  assert.equal(names(await fresh.list({ buildId: BUILD, role: 'database' })), [ctx.servers[2]!.name]);
  assert.equal(names(await fresh.list({ buildId: 'tlcx' })), [ctx.other.name]);
  assert.is((await fresh.list({ buildId: 'tl' })).length, 0, 'a prefix of a build id matches nothing');
  assert.is((await fresh.list()).length, 4);
  assert.equal((await fresh.get(ctx.servers[0]!.id))?.privateIp, ctx.servers[0]!.privateIp);
  assert.is(await fresh.get('ws-tlc-nope'), null);
});

servers('servers reach each other over the VPC: sshd, and a listener of another server that answers with its name', async (ctx) => {
  const [a, b, c] = ctx.servers as [LocalServer, LocalServer, LocalServer];
  assert.match(await firstLine(inServer(b.id), c.privateIp!, 22), /^SSH-2\.0-OpenSSH/);
  ctx.pids.push(await startListener(inServer(a.id), a.privateIp!, 8080));
  await waitListening(inServer(a.id), a.privateIp!, 8080);
  assert.is(await firstLine(inServer(b.id), a.privateIp!, 8080), a.name);
  assert.is(await firstLine(inServer(c.id), a.privateIp!, 8080), a.name);
  assert.not.ok(await connects(inServer(b.id), a.publicIp!, 8080), 'the listener is on the VPC address only');
});

servers('the outsider reaches public addresses but never the VPC, even with a route to it through the build machine', async (ctx) => {
  const [a, , c] = ctx.servers as [LocalServer, LocalServer, LocalServer];
  assert.match(await firstLine(outsider, c.publicIp!, 22), /^SSH-2\.0/);
  assert.not.ok(await connects(outsider, c.privateIp!, 22));
  await execa('ip', ['-n', cloud.outsiderNetns, 'route', 'add', cloud.privateCidr, 'via', cloud.buildMachine.publicIp]);
  try {
    assert.not.ok(await connects(outsider, c.privateIp!, 22));
    assert.not.ok(await connects(outsider, a.privateIp!, 8080));
  } finally {
    await execa('ip', ['-n', cloud.outsiderNetns, 'route', 'del', cloud.privateCidr]);
  }
  assert.ok(await connects(onThisMachine, c.privateIp!, 22, 3), 'the build machine reaches the VPC');
});

servers.run();

// ---

interface FirewallCtx {
  image: string;
  db: LocalServer;
  ws1: LocalServer;
  ws2: LocalServer;
  pids: number[];
  builder?: LocalServer;
}
const firewall = suite<FirewallCtx>('local cloud: the native firewall');

/** The test image (stock + iptables): reused when this machine has it for the current stock image, else made. */
async function iptablesImage(ctx: FirewallCtx): Promise<string> {
  const have = await cloud.images.get(TEST_IMAGE);
  if (have && have.parent === cloud.images.stockId) return have.id;
  await startMirror({ dataDir: MIRROR_DIR, address: cloud.buildMachine.privateIp, port: MIRROR_PORT });
  const userData = [
    '#!/bin/sh',
    'set -e',
    'apt-get update',
    'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables',
    // What is this run's only: the mirror's address (each server gets its own), apt's downloads.
    'rm -f /etc/apt/apt.conf.d/00adt-local-mirror',
    'apt-get clean',
    'rm -rf /var/lib/apt/lists/*',
    '',
  ].join('\n');
  ctx.builder = await create('build', userData, { buildId: 'tlcimg' });
  await cloud.waitUntilRunning(ctx.builder.id, { timeoutMs: 60_000 });
  const { log, exitCode } = await userDataExit(ctx.builder.id, 1500);
  if (exitCode !== 0) throw new Error(`installing iptables in the image builder failed (${exitCode}):\n${log}`);
  await cloud.stop(ctx.builder.id);
  const id = await cloud.snapshot(ctx.builder.id, TEST_IMAGE);
  await cloud.destroy(ctx.builder.id);
  await stopMirror(MIRROR_DIR);
  return id;
}

setup(firewall, async (ctx) => {
  ctx.pids = [];
  await cloud.ensureNetwork();
  ctx.image = await iptablesImage(ctx);
  [ctx.db, ctx.ws1, ctx.ws2] = await Promise.all([
    create('database', '#!/bin/sh\n', { image: ctx.image }),
    create('webserver', '#!/bin/sh\n', { image: ctx.image }),
    create('webserver', '#!/bin/sh\n', { image: ctx.image }),
  ]);
  for (const s of [ctx.db, ctx.ws1, ctx.ws2]) await cloud.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  // Listeners inside and outside the rules' port range.
  for (const port of [8005, 8011]) ctx.pids.push(await startListener(inServer(ctx.db.id), '0.0.0.0', port));
  for (const port of [8005, 8011]) await waitListening(inServer(ctx.db.id), '127.0.0.1', port);
});

firewall.after(async (ctx) => {
  await cleanup('the firewall suite', [
    () => killPids(ctx.pids ?? []),
    () => cloud.firewall.remove(BUILD, 'database'),
    () => destroyAll([ctx.db, ctx.ws1, ctx.ws2, ctx.builder].filter((s): s is LocalServer => Boolean(s))),
    () => stopMirror(MIRROR_DIR),
  ]);
});

firewall('the firewall servers boot from the test image, which has iptables (the stock image has not)', async ({ db, image }) => {
  assert.is((await cloud.get(db.id))?.image, image);
  assert.is((await cloud.images.get(image))?.parent, cloud.images.stockId);
  assert.is((await cloud.exec(db.id, ['iptables', '-S', 'INPUT'])).stdout.trim(), '-P INPUT ACCEPT');
  const stock = await create('webserver');
  try {
    await cloud.waitUntilRunning(stock.id, { timeoutMs: 60_000 });
    assert.is.not((await cloud.exec(stock.id, ['sh', '-c', 'command -v iptables'], { nothrow: true })).exitCode, 0);
  } finally {
    await cloud.destroy(stock.id);
  }
});

firewall('the native firewall blocks and allows as declared', async ({ db, ws1, ws2 }) => {
  // Without rules, everyone gets in: the refusals below are the firewall's.
  assert.ok(await connects(outsider, db.publicIp!, 22, 3));
  assert.ok(await connects(outsider, db.publicIp!, 8011, 3));
  assert.ok(await connects(inServer(ws2.id), db.privateIp!, 22, 3));
  const rules = [
    {
      protocol: 'tcp' as const,
      port: 22,
      sources: [`${cloud.buildMachine.publicIp}/32`, `${ws1.privateIp}/32`],
      description: 'ssh from the build machine and webserver 1',
    },
    { protocol: 'tcp' as const, port: [8000, 8010] as [number, number], sources: ['0.0.0.0/0'], description: 'a range, from anywhere' },
  ];
  await cloud.firewall.apply(BUILD, 'database', rules);
  assert.equal(await cloud.firewall.get(BUILD, 'database'), rules);
  assert.not.ok(await connects(outsider, db.publicIp!, 22), 'the outsider is refused ssh');
  assert.ok(await connects(onThisMachine, db.publicIp!, 22, 3), 'the build machine is allowed');
  assert.ok(await connects(inServer(ws1.id), db.privateIp!, 22, 3), 'webserver 1 is allowed');
  assert.not.ok(await connects(inServer(ws2.id), db.privateIp!, 22), 'webserver 2 is refused');
  assert.ok(await connects(outsider, db.publicIp!, 8005, 3), 'inside the range, from anywhere');
  assert.not.ok(await connects(outsider, db.publicIp!, 8011), 'outside the range');
  assert.ok(await connects(outsider, ws1.publicIp!, 22, 3), "another role's servers keep no rules");
});

firewall("a server's own iptables is real, and flushing it does not open the native firewall", async ({ db }) => {
  const ipt = (...args: string[]) => cloud.exec(db.id, ['iptables', ...args]);
  await ipt('-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'DROP');
  assert.not.ok(await connects(onThisMachine, db.publicIp!, 22), "the server's own rule drops the build machine");
  await ipt('-F');
  await ipt('-P', 'INPUT', 'ACCEPT');
  assert.ok(await connects(onThisMachine, db.publicIp!, 22, 3), 'its own rules are gone');
  assert.not.ok(await connects(outsider, db.publicIp!, 22), 'the native firewall still refuses the outsider');
  assert.not.ok(await connects(outsider, db.publicIp!, 8011));
});

firewall("a server cannot pass the rules with another server's address", async ({ db, ws1, ws2 }) => {
  // db counts the SYNs from webserver 1's address that reach it: webserver 2 forges them.
  const count = async () =>
    Number(/^\s*(\d+)/.exec((await cloud.exec(db.id, ['iptables', '-L', 'INPUT', '1', '-v', '-x', '-n'])).stdout)?.[1] ?? NaN);
  await cloud.exec(db.id, ['iptables', '-I', 'INPUT', '1', '-s', ws1.privateIp!, '-p', 'tcp', '--dport', '22', '--syn']);
  try {
    const forged = await cloud.exec(
      ws2.id,
      [
        'sh',
        '-c',
        'ip addr add "$1/32" dev eth1 && ip route add "$2/32" dev eth1 src "$1" && ip route get "$2" && ' +
          'timeout 3 bash -c \'exec 3<>/dev/tcp/$0/22\' "$2"; ip route del "$2/32"; ip addr del "$1/32" dev eth1',
        'forge',
        ws1.privateIp!,
        db.privateIp!,
      ],
      { nothrow: true },
    );
    assert.match(forged.stdout, `src ${ws1.privateIp}`, `the forged packets leave with webserver 1's address: ${forged.stderr}`);
    assert.is(await count(), 0, 'no forged SYN reached the database server');
    // The forged ARP requests taught the database server a wrong link-layer address for webserver 1.
    await cloud.exec(db.id, ['ip', 'neigh', 'flush', 'all']);
    assert.ok(await connects(inServer(ws1.id), db.privateIp!, 22, 3));
    assert.ok((await count()) > 0, "webserver 1's own SYNs are counted");
  } finally {
    await cloud.exec(db.id, ['iptables', '-D', 'INPUT', '1'], { nothrow: true });
    for (const s of [db, ws1, ws2]) await cloud.exec(s.id, ['ip', 'neigh', 'flush', 'all'], { nothrow: true });
  }
});

firewall('once the rules are removed the servers are open again', async ({ db }) => {
  await cloud.firewall.remove(BUILD, 'database');
  assert.is(await cloud.firewall.get(BUILD, 'database'), null);
  assert.ok(await connects(outsider, db.publicIp!, 22, 3));
  assert.ok(await connects(outsider, db.publicIp!, 8011, 3));
});

firewall.run();

// ---

interface IsolationCtx {
  a: LocalServer;
  b: LocalServer;
  dir: string;
  key: string;
  marker: string;
  secret: string;
}
const isolation = suite<IsolationCtx>("local cloud: a server's root sees only the server");

/** Runs a bash script as root inside the server: over SSH (the way the fleet gets in), or through the cloud's console. */
function rootIn(ctx: IsolationCtx, s: LocalServer, how: 'ssh' | 'console', script: string, args: string[] = []) {
  if (how === 'console') return run(inServer(s.id), ['bash', '-c', script, 'probe', ...args]);
  return run(onThisMachine, [...sshArgv(ctx.key, s.publicIp!), 'bash', '-s', '--', ...args], { input: script });
}

function sshArgv(key: string, ip: string): string[] {
  return [
    'ssh',
    '-i',
    key,
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
    `root@${ip}`,
  ];
}

/** What a process sees of its machine: PID 1, the processes, the roots, its capabilities, one file. */
const PROBE = `
echo "pid1=$(cat /proc/1/comm)"
echo "procs=$(ps -e -o comm= | sort -u | tr '\\n' ' ')"
echo "self=$(stat -Lc %d:%i /) root1=$(stat -Lc %d:%i /proc/1/root/)"
echo "capbnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status) capbnd1=$(awk '/^CapBnd/ {print $2}' /proc/1/status)"
try() { if cat "$1" >/dev/null 2>&1; then echo "reads=$1"; fi; }
try "$1"
try /proc/1/root/../../.."$1"
n=0
for d in /proc/[0-9]*; do
  n=$((n + 1))
  try "$d/root$1"
done
echo "roots=$n"
`;

function parseProbe(out: string) {
  const v = (k: string) => new RegExp(`(?:^|\\s)${k}=(\\S*)`, 'm').exec(out)?.[1] ?? '';
  return {
    pid1: v('pid1'),
    procs: /^procs=(.*)$/m.exec(out)?.[1]?.trim().split(' ') ?? [],
    self: v('self'),
    root1: v('root1'),
    capbnd: BigInt(`0x${v('capbnd') || '0'}`),
    capbnd1: BigInt(`0x${v('capbnd1') || '0'}`),
    reads: [...out.matchAll(/^reads=(.*)$/gm)].map((m) => m[1]),
    roots: Number(v('roots')),
  };
}

const CAP_SYS_ADMIN = 1n << 21n;
const CAP_MKNOD = 1n << 27n;

setup(isolation, async (ctx) => {
  await cloud.ensureNetwork();
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-tlc-isolation-'));
  ctx.key = join(ctx.dir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'adt-tlc-test', '-f', ctx.key]);
  const publicKey = (await readFile(`${ctx.key}.pub`, 'utf8')).trim();
  ctx.secret = randomBytes(12).toString('hex');
  ctx.marker = join(ctx.dir, 'marker-of-this-machine');
  await writeFile(ctx.marker, ctx.secret, { mode: 0o644 });
  [ctx.a, ctx.b] = await Promise.all([create('webserver', '#!/bin/sh\n', { sshKeys: [publicKey] }), create('webserver')]);
  for (const s of [ctx.a, ctx.b]) await cloud.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  await eventually('sshd of the server to let us in', async () => (await rootIn(ctx, ctx.a, 'ssh', 'true')).exitCode === 0, 20, 500);
});

isolation.after(async (ctx) => {
  await cleanup('the isolation suite', [
    () => destroyAll([ctx.a, ctx.b].filter(Boolean)),
    () => ctx.dir && rm(ctx.dir, { recursive: true, force: true }),
  ]);
});

isolation('the probe, run on this machine, sees its processes, its file and its capabilities', async (ctx) => {
  const p = parseProbe((await run(onThisMachine, ['bash', '-c', PROBE, 'probe', ctx.marker])).stdout);
  assert.ok(p.reads.includes(ctx.marker), 'it reads the marker here');
  assert.ok(p.procs.includes('node'), 'it sees this test');
  assert.ok((p.capbnd & CAP_SYS_ADMIN) !== 0n, 'root here holds sys_admin');
});

for (const how of ['ssh', 'console'] as const) {
  isolation(`root inside a server (${how}) sees only the server's processes, and PID 1 is tini`, async (ctx) => {
    const p = parseProbe((await rootIn(ctx, ctx.a, how, PROBE, [ctx.marker])).stdout);
    assert.is(p.pid1, 'tini');
    const allowed = ['tini', 'adt-local-init', 'sh', 'sshd', 'cron', 'sleep', 'bash', 'ps', 'sort', 'tr', 'setpriv', 'env', 'nsenter'];
    assert.ok(p.procs.length > 0);
    assert.equal(
      p.procs.filter((c) => !allowed.includes(c)),
      [],
      p.procs.join(' '),
    );
    assert.not.ok(p.procs.includes('node'), 'this test is not in its view');
  });

  isolation(`/proc/1/root is the server's root, and no file of this machine is reachable (${how})`, async (ctx) => {
    const p = parseProbe((await rootIn(ctx, ctx.a, how, PROBE, [ctx.marker])).stdout);
    assert.ok(p.self !== '' && p.self === p.root1, `/ is ${p.self}, /proc/1/root is ${p.root1}`);
    assert.ok(p.roots >= 4, `the marker was looked for through the root of every process in view (${p.roots})`);
    assert.equal(p.reads, [], `a file of this machine is readable inside: ${p.reads.join(', ')}`);
    const state = await rootIn(ctx, ctx.a, how, 'test -e "$1" || test -e /proc/1/root"$1"', [STATE]);
    assert.is.not(state.exitCode, 0, "the cloud's state (other servers' disks) is not in view");
  });

  const outOfReach = "the machine's devices, a proc, a writable sysfs and the kernel's settings are out of reach";
  isolation(`root holds sys_admin only in the server's own user namespace: ${outOfReach} (${how})`, async (ctx) => {
    const p = parseProbe((await rootIn(ctx, ctx.a, how, PROBE, [ctx.marker])).stdout);
    for (const [label, set] of [
      ['its own', p.capbnd],
      ["PID 1's", p.capbnd1],
    ] as const) {
      assert.ok(set !== 0n, `${label} bounding set was read`);
      assert.is(set & CAP_MKNOD, 0n, `${label} bounding set has mknod`);
    }
    const ns = await rootIn(ctx, ctx.a, how, 'readlink /proc/self/ns/user; cat /proc/self/uid_map');
    assert.is.not(ns.stdout.split('\n')[0], await readlink('/proc/self/ns/user'), 'a user namespace of its own');
    assert.match(ns.stdout, /^\s*0\s+0\s+4294967295$/m, "its uids are this machine's, one to one");
    for (const script of [
      'mkdir -p /mnt/dev && mount -t devtmpfs devtmpfs /mnt/dev',
      'mkdir -p /mnt/proc && mount -t proc proc /mnt/proc',
      'mkdir -p /mnt/sys && mount -t sysfs sysfs /mnt/sys',
      'mount -o remount,rw /sys',
      'mount -o remount,rw /proc/sys',
      'echo "|/bin/true" > /proc/sys/kernel/core_pattern',
      'mknod /root/sda b 8 0',
      'unshare -m sh -c "mount -t devtmpfs devtmpfs /mnt"',
      'hostname other',
    ]) {
      const r = await rootIn(ctx, ctx.a, how, script);
      assert.is.not(r.exitCode, 0, `${script}: ${r.stdout}`);
    }
    assert.is.not(await readFile('/proc/sys/kernel/core_pattern', 'utf8'), '|/bin/true\n', "the machine's core pattern is unchanged");
    const own = await rootIn(
      ctx,
      ctx.a,
      how,
      'mkdir -p /mnt/t && mount -t tmpfs tmpfs /mnt/t && umount /mnt/t && echo 1 > /proc/sys/net/ipv4/ip_forward && ' +
        'test -c /dev/fuse && echo own',
    );
    assert.is(own.stdout.trim(), 'own', `its own mounts, its network's settings and FUSE: ${own.stdout}`);
    assert.is((await rootIn(ctx, ctx.a, how, 'ls -A /mnt/dev 2>/dev/null | wc -l')).stdout.trim(), '0');
    assert.is((await rootIn(ctx, ctx.a, how, 'id -u')).stdout.trim(), '0', 'it is root all the same');
  });
}

isolation("files written under /etc by one server are invisible to the others and to this machine's /etc", async ({ a, b, secret }) => {
  const file = `/etc/adt-tlc-test-${secret}`;
  await cloud.exec(a.id, ['sh', '-c', 'echo "$1" > "$2"', 'write', secret, file]);
  assert.is((await cloud.exec(a.id, ['cat', file])).stdout.trim(), secret);
  assert.ok(existsSync(join(STATE, 'servers', a.name, 'upper', file)), "it is in the server's own disk");
  assert.is.not((await cloud.exec(b.id, ['test', '-e', file], { nothrow: true })).exitCode, 0, 'the other server does not see it');
  assert.not.ok(existsSync(file), "this machine's /etc does not have it");
});

isolation.run();

// ---

interface AccessCtx {
  s: LocalServer;
  dir: string;
  key: string;
}
const access = suite<AccessCtx>('local cloud: SSH and cron in a server');

setup(access, async (ctx) => {
  await cloud.ensureNetwork();
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-tlc-ssh-'));
  ctx.key = join(ctx.dir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'adt-tlc-test', '-f', ctx.key]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'not-given', '-f', join(ctx.dir, 'other')]);
  ctx.s = await create('webserver', '#!/bin/sh\n', { sshKeys: [(await readFile(`${ctx.key}.pub`, 'utf8')).trim()] });
  await cloud.waitUntilRunning(ctx.s.id, { timeoutMs: 60_000 });
});

access.after(async (ctx) => {
  await cleanup('the SSH and cron suite', [
    () => ctx.s && cloud.destroy(ctx.s.id),
    () => ctx.dir && rm(ctx.dir, { recursive: true, force: true }),
  ]);
});

access('a server created with sshKeys accepts ssh -i key root@<ip> from this machine and runs a command', async ({ s, key }) => {
  const r = await eventually(
    'ssh into the server',
    async () => {
      const x = await run(onThisMachine, [...sshArgv(key, s.publicIp!), 'hostname; id -un']);
      return x.exitCode === 0 ? x : null;
    },
    20,
    500,
  );
  assert.equal(r.stdout.trim().split('\n'), [s.name, 'root']);
  const vpc = await run(onThisMachine, [...sshArgv(key, s.privateIp!), 'cat /etc/hostname']);
  assert.is(vpc.stdout.trim(), s.name, 'over the VPC address too');
});

access('a key that was not given is refused', async ({ s, dir }) => {
  const r = await run(onThisMachine, [...sshArgv(join(dir, 'other'), s.publicIp!), 'true']);
  assert.is(r.exitCode, 255);
  assert.match(r.stderr, /Permission denied/);
});

access('a job written to /etc/cron.d runs on its own within about a minute', async ({ s }) => {
  // (No % in the command: cron reads it as a newline.)
  await cloud.exec(s.id, [
    'sh',
    '-c',
    'rm -f /root/cron-ran; echo "* * * * * root echo ran-by-cron > /root/cron-ran" > /etc/cron.d/adt-test',
  ]);
  await cloud.exec(s.id, ['chmod', '0644', '/etc/cron.d/adt-test']);
  // cron reads /etc/cron.d at every minute: the job runs at the next or the one after (bounded: 100 s).
  const ran = await eventually(
    'the cron job to run',
    async () => {
      const r = await cloud.exec(s.id, ['cat', '/root/cron-ran'], { nothrow: true });
      return r.exitCode === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
    },
    100,
    1000,
  );
  assert.is(ran, 'ran-by-cron');
});

access.run();

// ---

interface PowerCtx {
  first: LocalServer;
  second?: LocalServer;
  image?: string;
  sleeper: number;
}
const power = suite<PowerCtx>('local cloud: power off and snapshots');

setup(power, async (ctx) => {
  await cloud.ensureNetwork();
  ctx.first = await create('webserver', '#!/bin/sh\nset -e\necho first-was-here > /opt/first\n');
  await cloud.waitUntilRunning(ctx.first.id, { timeoutMs: 60_000 });
});

power.after(async (ctx) => {
  await cleanup('the power suite', [
    () => killPids(ctx.sleeper ? [ctx.sleeper] : []),
    () => destroyAll([ctx.first, ctx.second].filter((s): s is LocalServer => Boolean(s))),
    () => ctx.image && cloud.images.delete(ctx.image),
  ]);
});

power('a running server cannot be snapshotted: exit code 2, and it goes on running', async ({ first }) => {
  const e = await rejection(cloud.snapshot(first.id, 'adt-tlc-never'));
  assert.is(e?.code, 'NOT_STOPPED');
  assert.is(e?.exitCode, 2);
  assert.is((await cloud.get(first.id))?.state, 'running');
  assert.is(await cloud.images.get('adt-tlc-never'), null);
});

power('poweroff inside a server makes it stopped, and every process in it ends', async (ctx) => {
  const { first } = ctx;
  assert.is((await userDataExit(first.id)).exitCode, 0);
  const [file, ...args] = await cloud.execArgv(first.id, ['setsid', 'sleep', '1000']);
  const child = spawn(file, args, { detached: true, stdio: 'ignore' });
  child.unref();
  ctx.sleeper = child.pid!;
  await eventually(
    'the sleeper to run',
    async () => (await cloud.exec(first.id, ['pgrep', '-x', 'sleep'], { nothrow: true })).exitCode === 0,
  );
  const r = await record(first.name);
  const inside = (await execa('ip', ['netns', 'pids', r.netns])).stdout.split('\n').filter(Boolean).map(Number);
  assert.ok(inside.length >= 4, `tini, the init, sshd, cron, the sleeper: ${inside.join(' ')}`);
  await cloud.exec(first.id, ['poweroff'], { nothrow: true });
  await eventually('the server to be stopped', async () => (await cloud.get(first.id))?.state === 'stopped');
  await eventually('its processes to end', async () => !inside.some(processAlive));
  assert.not.ok(processAlive(r.initPid!), 'its PID 1');
  assert.not.ok(processAlive(r.pid!), 'its launcher');
  assert.is((await execa('ip', ['netns', 'pids', r.netns])).stdout.trim(), '', 'nothing left in its network namespace');
  const e = await rejection(cloud.exec(first.id, ['true']));
  assert.is(e?.code, 'NOT_RUNNING');
  assert.is((await cloud.list({ buildId: BUILD })).find((s) => s.id === first.id)?.state, 'stopped');
});

power("a snapshot of the stopped server boots a new server that sees the first one's files and runs its own user-data", async (ctx) => {
  const { first } = ctx;
  const firstInstance = (await readFile(join(STATE, 'servers', first.name, 'upper', 'var/lib/cloud/data/instance-id'), 'utf8')).trim();
  const name = `adt-tlc-snap-${randomBytes(3).toString('hex')}`;
  ctx.image = await cloud.snapshot(first.id, name);
  const image = await cloud.images.get(name);
  assert.equal(
    { id: image?.id, kind: image?.kind, parent: image?.parent, from: image?.from },
    { id: ctx.image, kind: 'snapshot', parent: first.image, from: first.name },
  );
  ctx.second = await create('webserver', '#!/bin/sh\nset -e\ncat /opt/first > /opt/second\n', { image: name });
  await cloud.waitUntilRunning(ctx.second.id, { timeoutMs: 60_000 });
  assert.is((await cloud.get(ctx.second.id))?.image, ctx.image);
  assert.is((await userDataExit(ctx.second.id)).exitCode, 0);
  const sh = (script: string) => cloud.exec(ctx.second!.id, ['sh', '-c', script]).then((r) => r.stdout.trim());
  assert.is(await sh('cat /opt/first'), 'first-was-here', "the first server's file");
  assert.is(await sh('cat /opt/second'), 'first-was-here', 'its own user-data ran, on the files of the first');
  const secondInstance = await sh('cat /var/lib/cloud/data/instance-id');
  assert.ok(firstInstance.startsWith('i-') && secondInstance.startsWith('i-'));
  assert.is.not(secondInstance, firstInstance, 'a new instance id');
  assert.is(await sh('hostname'), ctx.second.name, 'its own name, not the first one');
});

power.run();

// ---

interface InputCtx {
  s: LocalServer;
  reserved: string[];
}
const input = suite<InputCtx>('local cloud: bad input and an exhausted pool');

setup(input, async (ctx) => {
  ctx.reserved = [];
  await cloud.ensureNetwork();
  ctx.s = await create('webserver');
  await cloud.waitUntilRunning(ctx.s.id, { timeoutMs: 60_000 });
});

input.after(async (ctx) => {
  await cleanup('the bad input suite', [
    async () => {
      for (const d of ctx.reserved ?? []) await rmdir(d).catch(() => {});
    },
    () => ctx.s && cloud.destroy(ctx.s.id),
  ]);
});

/** What the cloud has: its servers, reserved addresses, namespaces and links. */
async function inventory() {
  return {
    servers: (await readdir(join(STATE, 'servers'))).sort(),
    addresses: (await readdir(join(STATE, 'addresses'))).filter((n) => n !== 'last').sort(),
    ...(await networkView()),
  };
}

input('bad names, user-data without #!, an unknown image and a bad ssh key: clear errors, exit code 2, nothing created', async ({ s }) => {
  const before = await inventory();
  const name = serverName({ role: 'webserver', buildId: BUILD });
  const base = { name, role: 'webserver' as const, buildId: BUILD, userData: '#!/bin/sh\n' };
  const cases: [() => Promise<unknown>, string, RegExp][] = [
    [() => cloud.create({ ...base, name: 'my-server' }), 'BAD_NAME', /server name "my-server" must come from serverName/],
    [() => cloud.create({ ...base, role: 'database' }), 'BAD_NAME', /must come from serverName\(\{ role: 'database'/],
    [() => cloud.create({ ...base, buildId: 'other' }), 'BAD_NAME', /buildId: 'other'/],
    [() => cloud.create({ ...base, name: '../../etc' }), 'BAD_NAME', /must come from serverName/],
    [() => cloud.create({ ...base, name: s.name }), 'NAME_TAKEN', new RegExp(`a server named ${s.name} already exists`)],
    [() => cloud.create({ ...base, userData: 'echo no shebang' }), 'BAD_USER_DATA', /must be a script starting with "#!"/],
    [() => cloud.create({ ...base, userData: `#!/bin/sh\n${'#'.repeat(70_000)}` }), 'BAD_USER_DATA', /at most 64 KiB/],
    [() => cloud.create({ ...base, image: 'no-such-image' }), 'NO_SUCH_IMAGE', /image "no-such-image" is not in this cloud's images/],
    [() => cloud.create({ ...base, sshKeys: ['not a key'] }), 'BAD_SSH_KEY', /sshKeys\[0\]: an OpenSSH public key/],
    [() => cloud.create({ ...base, sshKeys: ['ssh-ed25519 AAAA\nssh-rsa BBBB'] }), 'BAD_SSH_KEY', /on one line/],
  ];
  for (const [attempt, code, message] of cases) {
    const e = await rejection(attempt());
    assert.is(e?.code, code, String(e?.message ?? 'no error'));
    assert.is(e?.exitCode, 2, e?.message);
    assert.match(e?.message ?? '', message);
    assert.match(e?.message ?? '', /^\[adt:localcloud\] \[local\] /);
  }
  assert.equal(await inventory(), before, 'nothing was created');
  assert.is((await cloud.get(s.id))?.state, 'running', 'the server whose name was asked again is untouched');
});

input('bad cloud options are refused with exit code 2', () => {
  const refused = (o: ConstructorParameters<typeof LocalCloud>[0], re: RegExp) =>
    throws(() => new LocalCloud(o), { message: re, exitCode: 2 }, JSON.stringify(o));
  refused({ cloudId: 'tlc', publicCidr: '198.20.0.0/24' }, /publicCidr "198\.20\.0\.0\/24": a \/24 inside 198\.18\.0\.0\/15/);
  refused({ cloudId: 'tlc', privateCidr: '198.19.11.0/16' }, /privateCidr "198\.19\.11\.0\/16": a \/24 inside/);
  refused({ cloudId: 'tlc', publicCidr: '198.19.10.0/24', privateCidr: '198.19.10.0/24' }, /must differ/);
  refused({ cloudId: 'Bad_Id' }, /cloudId "Bad_Id"/);
  refused({ cloudId: 'toolong' }, /1-5 lowercase/);
});

input('an exhausted address pool is reported clearly, and nothing is left of the attempt', async (ctx) => {
  // Every free host number taken, as 252 servers would.
  for (let n = 2; n <= 253; n++) {
    const dir = join(STATE, 'addresses', String(n));
    if (!existsSync(dir)) {
      await mkdir(dir);
      ctx.reserved.push(dir);
    }
  }
  const before = await inventory();
  const e = await rejection(create('webserver'));
  assert.is(e?.code, 'POOL_EXHAUSTED', e?.message);
  assert.match(e?.message ?? '', /no free address left in 198\.19\.10\.0\/24 \(252 servers\): destroy some servers/);
  assert.equal(await inventory(), before);
  for (const d of ctx.reserved.splice(0)) await rmdir(d);
  const s = await create('webserver');
  try {
    assert.match(s.publicIp!, /^198\.19\.10\.\d+$/, 'addresses are given again once freed');
  } finally {
    await cloud.destroy(s.id);
  }
});

input.run();

// ---

interface DestroyCtx {
  servers: LocalServer[];
  pids: number[];
}
const destroy = suite<DestroyCtx>('local cloud: destroy and teardown');

setup(destroy, async (ctx) => {
  ctx.pids = [];
  await cloud.ensureNetwork();
  ctx.servers = await Promise.all([create('webserver'), create('webserver'), create('database')]);
  for (const s of ctx.servers) await cloud.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  for (const s of ctx.servers) ctx.pids.push(await startListener(inServer(s.id), s.privateIp!, 8080));
  for (const s of ctx.servers) await waitListening(inServer(s.id), s.privateIp!, 8080);
});

destroy.after(async (ctx) => {
  await cleanup('the destroy suite', [
    () => killPids(ctx.pids ?? []),
    () => destroyAll(ctx.servers ?? []),
    () => cloud.teardown(),
    () => stopMirror(MIRROR_DIR),
    () => rm(BASE, { recursive: true, force: true }),
  ]);
});

destroy('destroy leaves nothing behind: no namespace, link, process, state or mount', async (ctx) => {
  const records = await Promise.all(ctx.servers.map((s) => record(s.name)));
  const inside = (
    await Promise.all(
      records.map(async (r) => (await execa('ip', ['netns', 'pids', r.netns])).stdout.split('\n').filter(Boolean).map(Number)),
    )
  ).flat();
  assert.ok(inside.length >= 12, 'each server has its processes');
  await cloud.firewall.apply(BUILD, 'webserver', [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'], description: 'https' }]);
  // All at once, with rules in place: each destroy renders the firewall again while the others go.
  await destroyAll(ctx.servers);
  assert.is((await cloud.list()).length, 0);
  const chain = (await execa('iptables', ['-S', cloud.chain])).stdout;
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  const { netns, links } = await networkView();
  for (const [i, s] of ctx.servers.entries()) {
    const r = records[i]!;
    assert.not.ok(chain.includes(s.publicIp!) || chain.includes(s.privateIp!), `a rule left for ${s.name}:\n${chain}`);
    assert.not.ok(netns.includes(r.netns), `namespace ${r.netns}`);
    assert.equal(
      links.filter((l) => l === `tlcp${r.n}` || l === `tlcv${r.n}`),
      [],
    );
    assert.not.ok(existsSync(join(STATE, 'servers', s.name)), `state of ${s.name}`);
    assert.not.ok(existsSync(join(STATE, 'addresses', String(r.n))), `address ${r.n}`);
    assert.not.ok(mounts.includes(`/run/netns/${r.netns} `), `the mount of ${r.netns}`);
    assert.not.ok(mounts.includes(`/run/adt-local/userns/${r.netns} `), `the user namespace of ${r.netns}`);
    assert.not.ok(existsSync(`/run/adt-local/userns/${r.netns}`), `the user namespace file of ${r.netns}`);
    for (const pid of [r.pid!, r.initPid!]) assert.not.ok(processAlive(pid), `process ${pid} of ${s.name}`);
  }
  assert.not.ok(mounts.includes(STATE), "no mount of the cloud's state");
  assert.equal(inside.filter(processAlive), [], 'no process of the servers');
  assert.equal(netns, [cloud.outsiderNetns], 'only the outsider is left');
  await cloud.firewall.remove(BUILD, 'webserver');
});

destroy("teardown removes the cloud's bridges, outsider, chain and state", async () => {
  await cloud.teardown();
  assert.not.ok(existsSync(STATE));
  assert.equal(await networkView(), { netns: [], links: [] });
  assert.not.match((await execa('iptables', ['-S'])).stdout, /ADT-tlc-FW/);
});

destroy.run();
