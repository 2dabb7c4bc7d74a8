/**
 * The conformance suite every real-cloud driver runs, against its provider's fake (always) and
 * against the real API when its credentials are in the environment (skipped otherwise, and said so).
 * Driver test files add only what is specific to their provider.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import { serverName } from '../../src/naming.ts';
import type { ComputeProvider, DnsProvider, ManagedDatabaseProvider, NativeFirewallProvider, Server } from '../../src/types.ts';
import type { FakeApi, InjectedFailure } from '../../src/fakes/harness.ts';
import { freshKeyPair, TEST_KEY } from './_keys.ts';

export interface CloudUnderTest {
  compute: ComputeProvider;
  firewall: NativeFirewallProvider;
  dns: DnsProvider;
  databases: ManagedDatabaseProvider;
  /** The zone `dns` manages and a name in it. */
  zone: string;
  /** Present for the fake: the API log and failure injection. */
  fake?: FakeApi;
  /** A 429 as the provider sends it (status and rate-limit headers). */
  rateLimited?: Omit<InjectedFailure, 'match' | 'times'>;
  /** A secret that must never appear in error messages. */
  secret: string;
  /** Present for the fake: the public key lines root of this server was given (as the fake stored them). */
  installedKeys?(serverId: string): string[];
  close(): Promise<void>;
}

export interface ConformanceOptions {
  /** Suite title, e.g. `digitalocean (fake API)`. */
  title: string;
  /** Builds the drivers (and starts the fake). */
  setup: () => Promise<CloudUnderTest>;
  /** When set, the suite is not run and this reason is printed (no credentials in the environment). */
  skip?: string | false;
  /** Path prefix of server creation, e.g. `POST /droplets` (for injected failures). */
  createPath: string;
  /** Path prefix of a list of servers, e.g. `GET /droplets`. */
  listPath: string;
  /** Servers are slow on a real cloud: options for waits. */
  waitMs?: number;
  /** Poll interval for waits (short against a fake). */
  intervalMs?: number;
  /** The page size the driver under test was given (the pagination test makes more servers than that). */
  pageSize?: number;
  /** False for APIs whose lists come in one answer (Exoscale v2): no pagination test. */
  paginated?: boolean;
  /** The call that registers an SSH key with the account, e.g. `POST /account/keys`; absent: keys go inline (Linode). */
  keyPath?: string;
}

export function cloudConformance(o: ConformanceOptions): void {
  if (o.skip) {
    console.log(`SKIPPED ${o.title}: ${o.skip}`);
    return;
  }
  const test = suite<{ c: CloudUnderTest | null; ids: string[] }>(o.title);
  const buildId = `t${Date.now().toString(36).slice(-6)}`;
  const wait = { timeoutMs: o.waitMs ?? 5_000, intervalMs: o.intervalMs ?? 10 };

  test.before(async (ctx) => {
    ctx.ids = [];
    ctx.c = await o.setup();
  });
  test.after(async (ctx) => {
    if (!ctx.c) return;
    for (const id of ctx.ids) await ctx.c.compute.destroy(id).catch(() => {});
    await ctx.c.close();
  });

  test('creates servers with user-data and tags, waits for their addresses, lists them by exact build and role', async (ctx) => {
    const c = ctx.c;
    if (!c) return;
    const web = await c.compute.create({
      name: serverName({ role: 'webserver', buildId }),
      role: 'webserver',
      buildId,
      userData: '#!/bin/sh\necho hello\n',
    });
    ctx.ids.push(web.id);
    const db = await c.compute.create({
      name: serverName({ role: 'database', buildId }),
      role: 'database',
      buildId,
      userData: '#!/bin/sh\n',
    });
    ctx.ids.push(db.id);
    const other = await c.compute.create({
      name: serverName({ role: 'webserver', buildId: `${buildId}x` }),
      role: 'webserver',
      buildId: `${buildId}x`,
      userData: '#!/bin/sh\n',
    });
    ctx.ids.push(other.id);
    const running = await c.compute.waitUntilRunning(web.id, wait);
    assert.is(running.state, 'running');
    assert.ok(running.publicIp, 'a public address');
    assert.ok(running.privateIp, 'a private address');
    assert.ok(running.tags.includes(`adt-build-${buildId}`), running.tags.join(','));
    assert.equal((await c.compute.list({ buildId })).map((s) => s.name).sort(), [web.name, db.name].sort());
    assert.equal(
      (await c.compute.list({ buildId, role: 'webserver' })).map((s) => s.id),
      [web.id],
    );
    assert.is((await c.compute.get(web.id))?.name, web.name);
  });

  test('bad create options are refused before any call', async (ctx) => {
    const c = ctx.c;
    if (!c) return;
    const before = c.fake?.log.length ?? 0;
    await rejects(c.compute.create({ name: 'not-ours', role: 'webserver', buildId, userData: '#!/bin/sh\n' }), {
      code: 'BAD_NAME',
      exitCode: 2,
    });
    await rejects(
      c.compute.create({ name: serverName({ role: 'webserver', buildId }), role: 'webserver', buildId, userData: 'no shebang' }),
      'BAD_USER_DATA',
    );
    if (c.fake) assert.is(c.fake.log.length, before, 'nothing was sent');
  });

  test('sshKeys of create: on the server, registered once, malformed ones refused before any call, nothing private sent', async (ctx) => {
    const c = ctx.c;
    if (!c) return;
    // Another build: the other tests count this build's servers. The fixed key: a real account gets it once, ever.
    const b = `${buildId}k`;
    const make = (sshKeys: string[]) =>
      c.compute.create({
        name: serverName({ role: 'webserver', buildId: b }),
        role: 'webserver',
        buildId: b,
        userData: '#!/bin/sh\n',
        sshKeys,
      });
    const pair = freshKeyPair();
    const before = c.fake?.log.length ?? 0;
    const bad: [string, RegExp][] = [
      ['no-spaces-here', /sshKeys\[1\]: not "<type> <base64>/],
      ['not a key', /sshKeys\[1\]: its type is not one of/],
      [pair.privateKey, /sshKeys\[1\]: this is a private key/],
      [pair.privateBase64, /sshKeys\[1\]/],
      [`${TEST_KEY.line}\n${pair.publicKey}`, /sshKeys\[1\]: more than one line/],
      ['ssh-dss AAAAB3NzaC1kc3MAAACBAP', /sshKeys\[1\]: its type is not one of/],
      ['ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8 rsa-blob', /sshKeys\[1\]: the key's data is not a ssh-ed25519 key/],
      ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICoVop2J/kCD9quxkxz+8k/Vs366bT4zrhRbwiEgUL7', /sshKeys\[1\]: the key is not valid base64/],
    ];
    for (const [key, message] of bad) {
      const e = await rejects(make([TEST_KEY.line, key]), { code: 'BAD_SSH_KEY', exitCode: 2, message }, key.slice(0, 30));
      assert.not.ok(e.message.includes(pair.privateBase64.slice(0, 20)), 'the key is not quoted back');
    }
    if (c.fake) assert.is(c.fake.log.length, before, 'nothing was sent');
    const first = await make([TEST_KEY.line]);
    ctx.ids.push(first.id);
    const registered = c.fake?.log.length ?? 0;
    // The same key again (twice in the list, with another comment), and a key root gets besides.
    const second = await make([TEST_KEY.line, TEST_KEY.line.replace(/ \S+$/, ' other-comment'), pair.publicKey]);
    ctx.ids.push(second.id);
    if (c.fake) {
      const posts = (from: number, to: number) =>
        c.fake!.log.slice(from, to).filter((l) => `${l.method} ${l.path}` === o.keyPath && l.status < 300).length;
      assert.is(posts(before, registered), o.keyPath ? 1 : 0, 'the key was registered once');
      assert.is(posts(registered, c.fake.log.length), o.keyPath ? 1 : 0, 'the second create registered only the new key');
      const sent = JSON.stringify(c.fake.log.map((l) => l.body));
      assert.not.ok(/PRIVATE KEY/.test(sent) || sent.includes(pair.privateBase64.slice(0, 20)), 'no private material was sent');
    }
    if (c.installedKeys) {
      const blob = (line: string) => line.split(/\s+/)[1];
      assert.equal(c.installedKeys(first.id).map(blob), [blob(TEST_KEY.line)]);
      assert.equal(c.installedKeys(second.id).map(blob).sort(), [blob(TEST_KEY.line), blob(pair.publicKey)].sort());
    }
    for (const s of [first, second]) await c.compute.destroy(s.id);
    ctx.ids = ctx.ids.filter((id) => id !== first.id && id !== second.id);
  });

  test("creates in parallel with the same new key register it once (a deploy creates a role's servers together)", async (ctx) => {
    const c = ctx.c;
    if (!c) return;
    const b = `${buildId}p`;
    const key = freshKeyPair('adt-parallel').publicKey;
    const before = c.fake?.log.length ?? 0;
    const made = await Promise.all(
      [1, 2, 3].map(() =>
        c.compute.create({
          name: serverName({ role: 'webserver', buildId: b }),
          role: 'webserver',
          buildId: b,
          userData: '#!/bin/sh\n',
          sshKeys: [key],
        }),
      ),
    );
    ctx.ids.push(...made.map((s) => s.id));
    if (c.fake) {
      const tries = c.fake.log.slice(before).filter((l) => `${l.method} ${l.path}` === o.keyPath);
      assert.is(tries.length, o.keyPath ? 1 : 0, `one registration, not one per create: ${tries.map((l) => l.status).join(', ')}`);
    }
    if (c.installedKeys) {
      const blob = (line: string) => line.split(/\s+/)[1];
      for (const s of made) assert.equal(c.installedKeys(s.id).map(blob), [blob(key)], `${s.name} has the key`);
    }
    for (const s of made) await c.compute.destroy(s.id);
    ctx.ids = ctx.ids.filter((id) => !made.some((s) => s.id === id));
  });

  test('a 429 and a 500 in the middle of listing are retried; the list is whole', async (ctx) => {
    const c = ctx.c;
    if (!c?.fake) return;
    c.fake.fail({ match: o.listPath, ...(c.rateLimited ?? { status: 429, headers: { 'retry-after': '0' } }) });
    c.fake.fail({ match: o.listPath, status: 500 });
    const servers = await c.compute.list({ buildId });
    assert.is(servers.length, 2);
    const statuses = c.fake.log.filter((l) => `${l.method} ${l.path}`.startsWith(o.listPath)).map((l) => l.status);
    assert.ok(statuses.includes(429) && statuses.includes(500), statuses.join(','));
  });

  test('a 500 on create is not blindly repeated: the server is looked for, and never made twice', async (ctx) => {
    const c = ctx.c;
    if (!c?.fake) return;
    c.fake.fail({ match: o.createPath, status: 500 });
    const name = serverName({ role: 'webserver', buildId });
    // The fake failed before creating: the driver found nothing and reported the provider's error.
    const e = await rejects(
      c.compute.create({ name, role: 'webserver', buildId, userData: '#!/bin/sh\n' }),
      /HTTP 500/,
      'the error is reported',
    );
    assert.match(e.message, /may or may not/);
    assert.is((await c.compute.list({ buildId })).filter((s) => s.name === name).length, 0);
    // Now the provider makes the server and still answers 500: the driver finds it, makes no second one.
    c.fake.fail({ match: o.createPath, status: 500, afterHandling: true });
    const made = await c.compute.create({ name, role: 'webserver', buildId, userData: '#!/bin/sh\n' });
    ctx.ids.push(made.id);
    assert.is(made.name, name);
    assert.is((await c.compute.list({ buildId })).filter((s) => s.name === name).length, 1);
    await c.compute.destroy(made.id);
    ctx.ids = ctx.ids.filter((id) => id !== made.id);
  });

  test("an API error carries the provider's message and never the credentials", async (ctx) => {
    const c = ctx.c;
    if (!c?.fake) return;
    c.fake.fail({
      match: o.listPath,
      status: 403,
      body: c.fake.options.errorBody(403, 'You do not have access for the attempted action.'),
    });
    const e = await rejects(c.compute.list({ buildId }), /HTTP 403: You do not have access for the attempted action/);
    assert.match(e.message, /check the API token/);
    assert.not.ok(e.message.includes(c.secret));
  });

  test('lists past one page (pagination followed to the end)', async (ctx) => {
    const c = ctx.c;
    if (!c?.fake || o.paginated === false) return;
    const made: Server[] = [];
    for (let i = 0; i < (o.pageSize ?? 2) + 1; i++)
      made.push(
        await c.compute.create({
          name: serverName({ role: 'webserver', buildId, slot: 1 }),
          role: 'webserver',
          buildId,
          userData: '#!/bin/sh\n',
        }),
      );
    ctx.ids.push(...made.map((s) => s.id));
    assert.is((await c.compute.list({ buildId })).length, 2 + made.length);
    const listed = c.fake.log.length;
    assert.is((await c.compute.list({ buildId })).length, 2 + made.length);
    const pages = c.fake.log.slice(listed).filter((l) => `${l.method} ${l.path}` === o.listPath && l.status === 200).length;
    assert.ok(pages > 1, `one list read several pages (${pages})`);
    for (const s of made) await c.compute.destroy(s.id);
    ctx.ids = ctx.ids.filter((id) => !made.some((s) => s.id === id));
  });

  test('the native firewall of a role: applied, read back, replaced, removed', async (ctx) => {
    const c = ctx.c;
    if (!c) return;
    assert.is(await c.firewall.get(buildId, 'database'), null);
    await c.firewall.apply(buildId, 'database', [
      { protocol: 'tcp', port: 3306, sources: ['198.51.100.7/32'] },
      { protocol: 'tcp', port: 22, sources: ['203.0.113.5/32'] },
    ]);
    const got = await c.firewall.get(buildId, 'database');
    assert.equal(got?.map((r) => `${r.protocol}/${r.port}<-${r.sources.join(',')}`).sort(), [
      'tcp/22<-203.0.113.5/32',
      'tcp/3306<-198.51.100.7/32',
    ]);
    await c.firewall.apply(buildId, 'database', [{ protocol: 'tcp', port: 3306, sources: ['198.51.100.8/32'] }]);
    assert.equal(
      (await c.firewall.get(buildId, 'database'))?.map((r) => r.sources.join(',')),
      ['198.51.100.8/32'],
    );
    await rejects(c.firewall.apply(buildId, 'database', [{ protocol: 'tcp', port: 70000, sources: ['1.2.3.4'] }]), { exitCode: 2 });
    assert.equal((await c.firewall.get(buildId, 'database'))?.length, 1, 'the previous rules stay');
    await c.firewall.remove(buildId, 'database');
    assert.is(await c.firewall.get(buildId, 'database'), null);
    await c.firewall.remove(buildId, 'database');
  });

  test('DNS round robin: records added once, listed, removed; absent is not an error', async (ctx) => {
    const c = ctx.c;
    if (!c) return;
    const name = `${buildId}.${c.zone}`;
    await c.dns.ensureZone(c.zone);
    await c.dns.ensureZone(c.zone);
    await c.dns.addA(name, '198.51.100.10', 60);
    await c.dns.addA(name, '198.51.100.11', 60);
    await c.dns.addA(name, '198.51.100.10', 60);
    assert.equal((await c.dns.listA(name)).map((r) => r.content).sort(), ['198.51.100.10', '198.51.100.11']);
    await c.dns.removeA(name, '198.51.100.10');
    await c.dns.removeA(name, '198.51.100.10');
    assert.equal(
      (await c.dns.listA(name)).map((r) => r.content),
      ['198.51.100.11'],
    );
    await c.dns.removeA(name, '198.51.100.11');
    assert.equal(await c.dns.listA(name), []);
    await rejects(c.dns.addA('www.elsewhere.invalid', '198.51.100.1'), { exitCode: 2 });
  });

  test('a managed database: created with an allow-list, online, never open to the internet, destroyed', async (ctx) => {
    const c = ctx.c;
    if (!c) return;
    for (const allow of [['0.0.0.0/0'], [], ['::/0'], ['198.0.0.0/4']]) {
      await rejects(
        c.databases.create({ name: `adt-${buildId}-db`, buildId, engine: 'mysql', allow }),
        { exitCode: 2 },
        `allow ${JSON.stringify(allow)}`,
      );
    }
    assert.is((await c.databases.list({ buildId })).length, 0, 'nothing was created');
    const db = await c.databases.create({ name: `adt-${buildId}-db`, buildId, engine: 'mysql', allow: ['198.18.128.0/20'] });
    const again = await c.databases.create({ name: `adt-${buildId}-db`, buildId, engine: 'mysql', allow: ['198.18.128.0/20'] });
    assert.is(again.id, db.id, 'a second create converges on the same database');
    const online = await c.databases.waitUntilOnline(db.id, wait);
    assert.is(online.state, 'online');
    assert.ok(online.host, 'a host');
    assert.equal(await c.databases.getAllowList(db.id), ['198.18.128.0/20']);
    await c.databases.setAllowList(db.id, ['198.18.128.5', '198.18.128.6']);
    assert.equal((await c.databases.getAllowList(db.id)).map((x) => x.replace(/\/32$/, '')).sort(), ['198.18.128.5', '198.18.128.6']);
    assert.equal(
      (await c.databases.list({ buildId })).map((d) => d.id),
      [db.id],
    );
    await c.databases.destroy(db.id);
    await c.databases.destroy(db.id);
    assert.is(await c.databases.get(db.id), null);
  });

  test('destroy removes the servers; destroying an absent one is not an error', async (ctx) => {
    const c = ctx.c;
    if (!c) return;
    for (const id of ctx.ids) await c.compute.destroy(id);
    for (const id of ctx.ids) await c.compute.destroy(id);
    assert.is((await c.compute.list({ buildId })).length, 0);
    ctx.ids = [];
  });

  test.run();
}
