/** MariaDB for real: a server of its own on loopback, in a temporary directory. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { execaRunner, freePort, type Runner } from '@adt/core';
import { rejects, removeTempDir, tempDir } from '@adt/test-utils';
import * as maria from '../../src/engines/mariadb.ts';

/** The real runner, recording every argv so the test can prove no secret was on a command line. */
function recording(): Runner & { argvs: string[][] } {
  const real = execaRunner();
  const argvs: string[][] = [];
  return { argvs, run: (argv, o) => (argvs.push([...argv]), real.run(argv, o)) };
}

/**
 * The server's first packet to a TCP client from `fromAddress`: MariaDB sends its handshake when an
 * account may connect from that host, or error 1130 ("Host ... is not allowed") before any login.
 */
async function greeting(port: number, fromAddress: string): Promise<'handshake' | 'host not allowed' | string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: fromAddress });
    socket.setTimeout(5000, () => socket.destroy(new Error('no greeting within 5 s')));
    socket.once('data', (d: Buffer) => {
      socket.destroy();
      const payload = d.subarray(4);
      if (payload[0] === 0x0a) resolve('handshake');
      else if (payload[0] === 0xff && payload.readUInt16LE(1) === 1130) resolve('host not allowed');
      else resolve(payload.toString('latin1'));
    });
    socket.once('error', reject);
  });
}

const PASSWORD = "Gen3rated-Pa55word-with-quote'-and-backslash\\";
const test = suite<{ dir: string; o: maria.MariaDbOptions; runner: ReturnType<typeof recording>; pid?: number }>(
  'MariaDB engine (real server)',
);

test.before(async (ctx) => {
  // The server runs as the mysql user, which must be able to reach its data directory.
  ctx.dir = await tempDir('mariadb', { mode: 0o755 });
  ctx.runner = recording();
  ctx.o = {
    dataDir: join(ctx.dir, 'lib/mysql'),
    runDir: join(ctx.dir, 'run/mysqld'),
    configFile: join(ctx.dir, 'etc/mysql/adt.cnf'),
    logFile: join(ctx.dir, 'log/mysql/error.log'),
    bindAddress: '127.0.0.1',
    port: await freePort(),
    runner: ctx.runner,
  };
});

test.after(async (ctx) => {
  await maria.stop(ctx.o).catch(() => {});
  if (ctx.pid) {
    try {
      process.kill(ctx.pid, 'SIGKILL');
    } catch {}
  }
  await removeTempDir(ctx.dir);
});

test('the option file binds the given address and hardens the server', ({ o }) => {
  const cnf = maria.mariadbConfig(o);
  assert.match(cnf, /bind-address = 127\.0\.0\.1/);
  assert.match(cnf, new RegExp(`port = ${o.port}`));
  for (const line of ['skip-name-resolve', 'local-infile = 0', 'symbolic-links = 0', 'secure-file-priv = '])
    assert.ok(cnf.includes(line), line);
  assert.equal(maria.initialiseArgv(o), [
    'mariadb-install-db',
    `--defaults-file=${o.configFile}`,
    '--auth-root-authentication-method=socket',
    '--skip-test-db',
  ]);
});

test('initialises a new data directory once, starts detached and answers', async (ctx) => {
  assert.equal(await maria.initialise(ctx.o), { created: true });
  assert.equal(await maria.initialise(ctx.o), { created: false });
  ctx.pid = await maria.start(ctx.o);
  assert.ok(ctx.pid > 0);
  assert.ok(await maria.isRunning(ctx.o));
  assert.is(
    await maria.start(ctx.o),
    Number((await readFile(join(ctx.o.runDir, 'mysqld.pid'), 'utf8')).trim()),
    'start again: same server',
  );
});

test('the application user connects from an allowed address only, with the right password only', async ({ o, runner }) => {
  await maria.provision(o, { database: 'wordpress', user: 'wp_app', password: PASSWORD, allowFrom: ['127.0.0.1'] });
  const base = { host: '127.0.0.1', port: o.port!, user: 'wp_app', database: 'wordpress' };
  assert.is(await maria.tryConnect(runner, { ...base, password: PASSWORD }), null);
  assert.match((await maria.tryConnect(runner, { ...base, password: 'wrong-password-xxxxxxxx' })) ?? '', /Access denied/);
  assert.is(await greeting(o.port!, '127.0.0.2'), 'host not allowed');
  assert.is(await greeting(o.port!, '127.0.0.1'), 'handshake');
});

test('provisioning again follows the fleet: new addresses in, old ones out, password rotated', async ({ o, runner }) => {
  const rotated = `${PASSWORD}-rotated`;
  await maria.provision(o, { database: 'wordpress', user: 'wp_app', password: rotated, allowFrom: ['127.0.0.2/32'] });
  const base = { host: '127.0.0.1', port: o.port!, user: 'wp_app', database: 'wordpress' };
  assert.is(await greeting(o.port!, '127.0.0.2'), 'handshake', 'the new address may connect');
  assert.is(await greeting(o.port!, '127.0.0.1'), 'host not allowed', 'the old address is refused');
  await maria.provision(o, { database: 'wordpress', user: 'wp_app', password: rotated, allowFrom: ['127.0.0.0/30'] });
  assert.is(await maria.tryConnect(runner, { ...base, password: rotated }), null, 'a CIDR admits 127.0.0.1 again');
  assert.ok(await maria.tryConnect(runner, { ...base, password: PASSWORD }), 'the old password is refused');
  await maria.provision(o, { database: 'wordpress', user: 'wp_app', password: rotated, allowFrom: ['127.0.0.2'] });
  assert.equal(await maria.userHosts(o, 'wp_app'), ['127.0.0.2']);
});

test('no password ever appeared on a command line', ({ runner }) => {
  assert.ok(runner.argvs.length > 5);
  for (const argv of runner.argvs) assert.not.ok(argv.join(' ').includes('Pa55word'), argv.join(' '));
});

test('stops cleanly, and the data survives a restart', async (ctx) => {
  await maria.stop(ctx.o);
  assert.not.ok(await maria.isRunning(ctx.o));
  let gone = false;
  try {
    process.kill(ctx.pid!, 0);
  } catch {
    gone = true;
  }
  assert.ok(gone, 'the mariadbd process has exited');
  ctx.pid = await maria.start(ctx.o);
  const r = await ctx.o.runner.run(maria.clientArgv(ctx.o), { input: "SHOW DATABASES LIKE 'wordpress';\n" });
  assert.is(r.stdout.trim(), 'wordpress');
  await maria.stop(ctx.o);
});

test('a server that cannot start reports the log lines and exits the wait', async (ctx) => {
  const port = ctx.o.port!;
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(port, '127.0.0.1', r));
  try {
    await rejects(maria.start(ctx.o, { timeoutMs: 20_000 }), /did not become ready/, 'start fails while the port is taken');
  } finally {
    await new Promise((r) => busy.close(r));
  }
});

test.run();
