/**
 * The local cloud for real, as root: network and mount namespaces, bridges, iptables. This test's
 * cloud is `tlc` on 198.19.10.0/24 (public) and 198.19.11.0/24 (VPC); everything it makes is torn
 * down in `after`, even when a test fails.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { processAlive, sleep } from '@adt/core';
import localDriver, { LocalCloud } from '../../src/drivers/local.ts';
import { serverName } from '../../src/naming.ts';
import type { Server } from '../../src/types.ts';

const STATE = '/var/lib/adt-local/test-tlc';
const options = { cloudId: 'tlc', stateDir: STATE, publicCidr: '198.19.10.0/24', privateCidr: '198.19.11.0/24' };

interface Ctx {
  cloud: LocalCloud;
  servers: Server[];
  pids: number[];
}

const test = suite<Ctx>('local cloud (namespaces, bridges, native firewall)');

/** Starts a long-lived command inside a server, detached; returns its PID. */
async function startIn(cloud: LocalCloud, id: string, argv: string[]): Promise<number> {
  const full = await cloud.execArgv(id, ['setsid', ...argv]);
  const child = spawn(full[0], full.slice(1), { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid!;
}

/** A TCP connection attempt (bounded): true when it connects. */
async function connects(argvPrefix: string[], ip: string, port: number): Promise<boolean> {
  const r = await execa(argvPrefix[0]!, [...argvPrefix.slice(1), 'timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`], {
    reject: false,
  });
  return r.exitCode === 0;
}

const TCP_LISTENER = (port: number) => [
  'python3',
  '-c',
  `import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', ${port}))\ns.listen(16)\nwhile True:\n  c,_=s.accept()\n  c.sendall(b'SSH-2.0-test\\r\\n')\n  c.close()\n`,
];

async function waitListening(cloud: LocalCloud, id: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await cloud.exec(id, ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { nothrow: true });
    if (r.exitCode === 0) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port} in ${id}`);
}

test.before(async (ctx) => {
  ctx.cloud = localDriver(options);
  ctx.pids = [];
  await ctx.cloud.teardown(); // a previous run that died leaves nothing in the way
  await ctx.cloud.ensureNetwork();
});

test.after(async (ctx) => {
  await ctx.cloud?.teardown();
});

test('three servers are created and run their user-data, each with its own name and two addresses', async (ctx) => {
  const mk = (role: 'webserver' | 'database') => {
    const buildId = 'tlc';
    return ctx.cloud.create({
      name: serverName({ role, buildId }),
      role,
      buildId,
      userData: '#!/bin/bash\nset -e\necho "booted as $(hostname)"\nip -4 -br addr show dev eth1\n',
    });
  };
  ctx.servers = await Promise.all([mk('webserver'), mk('webserver'), mk('database')]);
  for (const s of ctx.servers) {
    await ctx.cloud.waitUntilRunning(s.id, { timeoutMs: 20_000 });
    for (let i = 0; i < 100 && (await ctx.cloud.bootStatus(s.id)).exitCode === null; i++) await sleep(50);
    assert.equal(await ctx.cloud.bootStatus(s.id), { started: true, exitCode: 0 });
    const log = await readFile(ctx.cloud.userDataLog(s.id), 'utf8');
    assert.match(log, new RegExp(`booted as ${s.name}`));
    assert.match(log, new RegExp(s.privateIp!.replace(/\./g, '\\.')));
    assert.match(s.publicIp!, /^198\.19\.10\.\d+$/);
    assert.match(s.privateIp!, /^198\.19\.11\.\d+$/);
  }
  assert.is(new Set(ctx.servers.map((s) => s.publicIp)).size, 3, 'distinct addresses');
});

test("list finds a build's servers by exact role and build, also from a fresh process's view", async (ctx) => {
  const fresh = localDriver(options);
  assert.is((await fresh.list({ buildId: 'tlc' })).length, 3);
  assert.is((await fresh.list({ buildId: 'tlc', role: 'database' })).length, 1);
  assert.is((await fresh.list({ buildId: 'tl' })).length, 0, 'a prefix of the build id matches nothing');
  assert.equal((await fresh.get(ctx.servers[0]!.id))?.privateIp, ctx.servers[0]!.privateIp);
  assert.is(await fresh.get('ws-tlc-nope'), null);
});

test('one server reaches an HTTP server on another over the VPC, and an ssh-style TCP service', async (ctx) => {
  const [a, b, c] = ctx.servers as [Server, Server, Server];
  ctx.pids.push(await startIn(ctx.cloud, a.id, ['python3', '-m', 'http.server', '8080', '--bind', a.privateIp!, '--directory', '/etc']));
  ctx.pids.push(await startIn(ctx.cloud, c.id, TCP_LISTENER(22)));
  await waitListening(ctx.cloud, c.id, 22);
  let page = '';
  for (let i = 0; i < 100 && !page.includes('hostname'); i++) {
    page = (await ctx.cloud.exec(b.id, ['curl', '-s', '--max-time', '3', `http://${a.privateIp}:8080/`], { nothrow: true })).stdout;
    if (!page.includes('hostname')) await sleep(50);
  }
  assert.match(page, /hostname/, "a directory listing of the other server's /etc");
  const banner = await ctx.cloud.exec(a.id, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${c.privateIp}/22; head -c 7 <&3`]);
  assert.is(banner.stdout, 'SSH-2.0');
});

test('the outsider reaches public addresses but never the VPC', async (ctx) => {
  const c = ctx.servers[2]!;
  const outsider = ctx.cloud.outsiderArgv([]) as unknown as string[];
  assert.ok(await connects(outsider, c.publicIp!, 22), 'public address, no firewall: open');
  assert.not.ok(await connects(outsider, c.privateIp!, 22), 'VPC address: unreachable');
  assert.not.ok(await connects(outsider, ctx.servers[0]!.privateIp!, 8080));
});

test("the native firewall blocks and allows as declared, and the server's own iptables -F does not open it", async (ctx) => {
  const c = ctx.servers[2]!; // the database server: its role gets the rules
  const outsider = ctx.cloud.outsiderArgv([]) as unknown as string[];
  const web = ctx.servers[0]!;
  await ctx.cloud.firewall.apply('tlc', 'database', [
    {
      protocol: 'tcp',
      port: 22,
      sources: [`${ctx.cloud.buildMachine.publicIp}/32`, `${web.privateIp}/32`],
      description: 'ssh from the build machine and webserver 1',
    },
  ]);
  assert.equal((await ctx.cloud.firewall.get('tlc', 'database'))?.[0]?.port, 22);
  assert.not.ok(await connects(outsider, c.publicIp!, 22), 'the outsider is refused');
  assert.ok(await connects(['env'], c.publicIp!, 22), 'the build machine is allowed');
  assert.ok(await connects((await ctx.cloud.execArgv(web.id, [])) as unknown as string[], c.privateIp!, 22), 'webserver 1 is allowed');
  const other = ctx.servers[1]!;
  assert.not.ok(
    await connects((await ctx.cloud.execArgv(other.id, [])) as unknown as string[], c.privateIp!, 22),
    'webserver 2 is refused',
  );
  // Inside the server: flush everything and open up. The cloud's firewall is not there.
  await ctx.cloud.exec(c.id, ['iptables', '-F']);
  await ctx.cloud.exec(c.id, ['iptables', '-P', 'INPUT', 'ACCEPT']);
  assert.not.ok(await connects(outsider, c.publicIp!, 22), 'still refused after the server flushed its own rules');
  // A server cannot pretend to be another (its packets leave with its own address only).
  const spoof = await ctx.cloud.exec(
    other.id,
    [
      'bash',
      '-c',
      `ip addr add ${web.privateIp}/32 dev eth1 && timeout 3 bash -c 'exec 3<>/dev/tcp/${c.privateIp}/22' ; r=$?; ip addr del ${web.privateIp}/32 dev eth1; exit $r`,
    ],
    { nothrow: true },
  );
  assert.is.not(spoof.exitCode, 0, 'a spoofed source address does not get through');
  await ctx.cloud.firewall.remove('tlc', 'database');
  assert.ok(await connects(outsider, c.publicIp!, 22), 'open again once the rules are removed');
});

test('files written under /etc by one server are invisible to the others and to the build machine', async (ctx) => {
  const [a, b] = ctx.servers as [Server, Server];
  await ctx.cloud.exec(a.id, [
    'sh',
    '-c',
    'mkdir -p /etc/adt-test && echo secret-of-a > /etc/adt-test/only-a.txt && echo db > /var/lib/adt-test-a',
  ]);
  assert.is((await ctx.cloud.exec(a.id, ['cat', '/etc/adt-test/only-a.txt'])).stdout.trim(), 'secret-of-a');
  assert.is.not((await ctx.cloud.exec(b.id, ['test', '-e', '/etc/adt-test/only-a.txt'], { nothrow: true })).exitCode, 0);
  assert.not.ok(existsSync('/etc/adt-test/only-a.txt'));
  assert.not.ok(existsSync('/var/lib/adt-test-a'));
  // The cloud's own state (other servers' files) is hidden from servers.
  const seen = await ctx.cloud.exec(b.id, ['sh', '-c', `ls -A ${STATE} 2>/dev/null | wc -l`]);
  assert.is(seen.stdout.trim(), '0');
});

test('bad input gives a clear error, exit code 2, and creates nothing', async (ctx) => {
  const before = (await ctx.cloud.list()).length;
  const name = ctx.servers[0]!.name;
  const cases: [() => Promise<unknown>, string][] = [
    [() => ctx.cloud.create({ name, role: 'webserver', buildId: 'tlc', userData: '#!/bin/sh\n' }), 'NAME_TAKEN'],
    [() => ctx.cloud.create({ name: 'my-server', role: 'webserver', buildId: 'tlc', userData: '#!/bin/sh\n' }), 'BAD_NAME'],
    [
      () =>
        ctx.cloud.create({
          name: serverName({ role: 'webserver', buildId: 'tlc' }),
          role: 'webserver',
          buildId: 'tlc',
          userData: 'echo no shebang',
        }),
      'BAD_USER_DATA',
    ],
    [() => ctx.cloud.firewall.apply('tlc', 'webserver', [{ protocol: 'tcp', port: 70000, sources: ['198.19.10.1'] }]), 'BAD_RULE'],
    [() => ctx.cloud.firewall.apply('tlc', 'webserver', [{ protocol: 'tcp', port: 22, sources: ['not-an-ip'] }]), 'BAD_RULE'],
  ];
  for (const [fn, code] of cases) {
    const e = await fn().then(
      () => null,
      (err) => err,
    );
    assert.is(e?.code, code, String(e?.message ?? e));
    assert.is(e?.exitCode, 2);
  }
  assert.throws(() => localDriver({ cloudId: 'x', publicCidr: '203.0.113.0/24' }), /inside 198\.18\.0\.0\/15/);
  assert.throws(() => localDriver({ cloudId: 'Bad_Id' }), /cloudId/);
  assert.is((await ctx.cloud.list()).length, before);
});

test('an exhausted address pool is reported clearly', async (ctx) => {
  // Reserve every free host number, as 252 servers would.
  const reserved: string[] = [];
  for (let n = 2; n <= 253; n++) {
    const dir = join(STATE, 'addresses', String(n));
    if (!existsSync(dir)) {
      await mkdir(dir);
      reserved.push(dir);
    }
  }
  try {
    const e = await ctx.cloud
      .create({ name: serverName({ role: 'webserver', buildId: 'tlc' }), role: 'webserver', buildId: 'tlc', userData: '#!/bin/sh\n' })
      .then(
        () => null,
        (err) => err,
      );
    assert.is(e?.code, 'POOL_EXHAUSTED');
  } finally {
    const { rmdir } = await import('node:fs/promises');
    for (const d of reserved) await rmdir(d);
  }
});

test('destroy leaves nothing behind: no namespace, link, mount, process or state', async (ctx) => {
  const pidsInside = ctx.pids.slice();
  // All at once, with rules in place (each destroy re-renders the native firewall while the others
  // remove their servers: this once failed reading a server that had just gone).
  await ctx.cloud.firewall.apply('tlc', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'], description: 'https' }]);
  await Promise.all(ctx.servers.map((s) => ctx.cloud.destroy(s.id)));
  assert.is((await ctx.cloud.list()).length, 0);
  const chain = (await execa('iptables', ['-S', 'ADT-tlc-FW'])).stdout;
  for (const s of ctx.servers) assert.not.ok(chain.includes(`${s.publicIp}/32`), `no rule left for ${s.publicIp}:\n${chain}`);
  const netns = (await execa('ip', ['netns', 'list'])).stdout;
  for (const s of ctx.servers) assert.not.ok(existsSync(join(STATE, 'servers', s.name)), s.name);
  assert.not.match(netns, /tlc-\d/);
  const links = (await execa('ip', ['-br', 'link'])).stdout;
  assert.not.match(links, /tlc[pv]\d/);
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  assert.not.match(mounts, /test-tlc\/(servers|nsfs\/.+\.(mnt|uts))/);
  for (const pid of pidsInside) assert.not.ok(processAlive(pid), `process ${pid} still runs`);
  await ctx.cloud.teardown();
  assert.not.ok(existsSync(STATE));
  assert.not.match((await execa('ip', ['-br', 'link'])).stdout, /tlc-(pub|vpc)|tlco0/);
  assert.not.match((await execa('iptables', ['-S'])).stdout, /ADT-tlc-FW/);
  assert.not.match((await execa('ip', ['netns', 'list'])).stdout, /tlc-outsider/);
});

test.run();
