/**
 * The authentication app over real HTTPS on loopback (a certificate from a local CA), a real SMTP
 * mail catcher, and a datastore with a clock of our own: sign-in by emailed link, the grant for the
 * connection's own address, single use, expiry, CSRF, rate limits, escaping, admin revoke.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execaRunner, freePort } from '@adt/core';
import { rejects, removeTempDir, tempDir } from '@adt/test-utils';
import { ConfigStore, keys } from '@adt/configstore';
import memoryDriver from '@adt/configstore/drivers/memory';
import { ensureCa, issueCertificate } from '@adt/webserver';
import { createAuthApp, escapeHtml, RateLimiter } from '../src/app.ts';
import { startMailCatcher, type MailCatcher } from '@adt/localcloud/services/mail';
import { sendMail } from '../src/smtp.ts';

interface Res {
  status: number;
  body: string;
  setCookie: string[];
}

/** A small browser: one cookie jar, HTTPS with the test CA. */
class Browser {
  jar = new Map<string, string>();
  readonly port: number;
  readonly ca: string;
  constructor(port: number, ca: string) {
    this.port = port;
    this.ca = ca;
  }
  go(method: string, path: string, form?: Record<string, string>, headers: Record<string, string> = {}): Promise<Res> {
    const body = form ? new URLSearchParams(form).toString() : undefined;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          ca: this.ca,
          servername: 'auth.adt.test',
          headers: {
            host: 'auth.adt.test',
            cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '),
            ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } : {}),
            ...headers,
          },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (data += c));
          res.on('end', () => {
            const setCookie = res.headers['set-cookie'] ?? [];
            for (const c of setCookie) {
              const [kv] = c.split(';');
              const [k, v] = kv!.split('=');
              this.jar.set(k!, v!);
            }
            resolve({ status: res.statusCode ?? 0, body: data, setCookie });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
  csrfOf(html: string) {
    return /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  }
}

interface Ctx {
  dir: string;
  server: Server;
  mail: MailCatcher;
  store: ConfigStore;
  port: number;
  ca: string;
  log: string[];
  clock: { now: number };
}
const test = suite<Ctx>('authentication app (HTTPS, SMTP, datastore)');

test.before(async (ctx) => {
  ctx.dir = await tempDir('auth');
  const runner = execaRunner({ timeoutMs: 60_000 });
  const ca = await ensureCa(runner, join(ctx.dir, 'ca'));
  const cert = await issueCertificate(runner, ca, join(ctx.dir, 'tls'), ['auth.adt.test']);
  ctx.ca = await readFile(ca.certFile, 'utf8');
  ctx.clock = { now: Date.parse('2026-11-25T10:00:00Z') };
  ctx.store = new ConfigStore({ driver: memoryDriver({ now: () => ctx.clock.now }), writeBudget: null });
  ctx.mail = await startMailCatcher();
  ctx.log = [];
  const app = createAuthApp({
    store: ctx.store,
    allowList: ['ann@adt.test', 'boss@adt.test'],
    admins: ['boss@adt.test'],
    baseUrl: 'https://auth.adt.test',
    siteName: 'Our <b>site</b>',
    grantMinutes: 60,
    linkMinutes: 15,
    secret: randomBytes(32),
    log: (l) => ctx.log.push(l),
    now: () => ctx.clock.now,
    limits: { perAddress: 20, perEmail: 5 },
    sendMail: (to, subject, text) => sendMail({ host: '127.0.0.1', port: ctx.mail.port }, { from: 'auth@adt.test', to, subject, text }),
  });
  ctx.port = await freePort();
  ctx.server = createServer({ cert: await readFile(cert.chainFile), key: await readFile(cert.keyFile) }, app);
  await new Promise<void>((r) => ctx.server.listen(ctx.port, '127.0.0.1', () => r()));
});

test.after(async (ctx) => {
  await new Promise<void>((r) => ctx.server?.close(() => r()));
  await ctx.mail?.close();
  await removeTempDir(ctx.dir);
});

async function askLink(ctx: Ctx, b: Browser, email: string, headers: Record<string, string> = {}): Promise<Res> {
  const home = await b.go('GET', '/');
  return b.go('POST', '/sign-in', { csrf: b.csrfOf(home.body), email }, headers);
}
const lastLink = (ctx: Ctx) =>
  /https:\/\/auth\.adt\.test(\/verify\?token=[A-Za-z0-9_-]+)/.exec(ctx.mail.messages.at(-1)?.text ?? '')?.[1] ?? '';
async function useLink(b: Browser, path: string, headers: Record<string, string> = {}): Promise<Res> {
  const confirm = await b.go('GET', path);
  const token = /name="token" value="([^"]+)"/.exec(confirm.body)?.[1] ?? '';
  return b.go('POST', '/verify', { csrf: b.csrfOf(confirm.body), token }, headers);
}

test('the sign-in page is an accessible form, escaped, with a CSRF token', async (ctx) => {
  const r = await new Browser(ctx.port, ctx.ca).go('GET', '/');
  assert.is(r.status, 200);
  assert.match(r.body, /<html lang="en">/);
  assert.match(r.body, /<label for="email">Email address<\/label>\s*<input id="email" name="email" type="email"/);
  assert.ok(r.body.includes('Our &lt;b&gt;site&lt;/b&gt;'), 'the site name is escaped');
  assert.match(r.body, /name="csrf" value="[A-Za-z0-9_-]{43}"/);
  assert.is(escapeHtml(`<script>"x"&'y'</script>`), '&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;');
});

test("an allowed address gets a link by mail; the link grants the connection's own address, never a forwarded one", async (ctx) => {
  const b = new Browser(ctx.port, ctx.ca);
  const asked = await askLink(ctx, b, 'Ann@adt.test');
  assert.is(asked.status, 200);
  assert.match(asked.body, /Check your email/);
  assert.is(ctx.mail.messages.at(-1)?.to, 'ann@adt.test');
  const path = lastLink(ctx);
  assert.match(path, /^\/verify\?token=/);
  const done = await useLink(b, path, { 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9' });
  assert.is(done.status, 200, done.body);
  assert.match(done.body, /This device \(127\.0\.0\.1\) may reach/);
  const grant = await ctx.store.get(keys.authorisedIps.key('127.0.0.1'));
  assert.is(grant?.subject, 'ann@adt.test');
  assert.is(grant?.expiresAt, new Date(ctx.clock.now + 3_600_000).toISOString());
  assert.equal(await ctx.store.listOf(keys.authorisedIps), ['127.0.0.1'], 'the forwarded address got nothing');
  // Reused: refused and logged.
  const again = await useLink(b, path);
  assert.is(again.status, 410);
  assert.ok(
    ctx.log.some((l) => /refused POST \/verify from 127\.0\.0\.1: reused link of ann@adt\.test/.test(l)),
    ctx.log.join('\n'),
  );
  assert.not.ok(
    ctx.log.some((l) => l.includes(path.split('=')[1]!)),
    'no token in the log',
  );
});

test('an address not on the list gets the same answer and no mail', async (ctx) => {
  const before = ctx.mail.messages.length;
  const r = await askLink(ctx, new Browser(ctx.port, ctx.ca), 'eve@evil.test');
  assert.is(r.status, 200);
  assert.match(r.body, /If <strong>eve@evil\.test<\/strong> may reach/);
  assert.is(ctx.mail.messages.length, before);
});

test('an expired link is refused', async (ctx) => {
  const b = new Browser(ctx.port, ctx.ca);
  await askLink(ctx, b, 'ann@adt.test');
  const path = lastLink(ctx);
  ctx.clock.now += 16 * 60_000;
  const r = await useLink(b, path);
  assert.is(r.status, 410);
  assert.match(r.body, /expired/);
  assert.ok(ctx.log.some((l) => l.includes('expired link of ann@adt.test')));
});

test('forms without the right CSRF token are refused', async (ctx) => {
  const b = new Browser(ctx.port, ctx.ca);
  await b.go('GET', '/');
  assert.is((await b.go('POST', '/sign-in', { email: 'ann@adt.test' })).status, 403);
  assert.is((await b.go('POST', '/sign-in', { csrf: 'x'.repeat(43), email: 'ann@adt.test' })).status, 403);
  const other = new Browser(ctx.port, ctx.ca);
  const token = other.csrfOf((await other.go('GET', '/')).body);
  assert.is((await b.go('POST', '/sign-in', { csrf: token, email: 'ann@adt.test' })).status, 403, 'a token of another browser');
});

test('a burst of 100 attempts is cut off by the rate limits and logged', async (ctx) => {
  ctx.clock.now += 3_600_000;
  const b = new Browser(ctx.port, ctx.ca);
  const csrf = b.csrfOf((await b.go('GET', '/')).body);
  const statuses: number[] = [];
  for (let i = 0; i < 100; i++) statuses.push((await b.go('POST', '/sign-in', { csrf, email: `x${i}@nowhere.test` })).status);
  assert.is(statuses.filter((s) => s === 200).length, 20, 'the per-address limit');
  assert.is(statuses.filter((s) => s === 429).length, 80);
  assert.ok(ctx.log.filter((l) => l.includes('too many sign-in attempts')).length >= 80);
  const limiter = new RateLimiter(5, 600_000);
  assert.equal(
    Array.from({ length: 7 }, (_, i) => limiter.allow('k', i)),
    [true, true, true, true, true, false, false],
  );
  assert.ok(limiter.allow('k', 700_000), 'the window slides');
});

test('an admin lists and revokes grants; others cannot', async (ctx) => {
  ctx.clock.now += 3_600_000;
  const ann = new Browser(ctx.port, ctx.ca);
  await askLink(ctx, ann, 'ann@adt.test');
  await useLink(ann, lastLink(ctx));
  assert.is((await ann.go('GET', '/admin')).status, 403, 'not an admin');
  const boss = new Browser(ctx.port, ctx.ca);
  await askLink(ctx, boss, 'boss@adt.test');
  const granted = await useLink(boss, lastLink(ctx));
  assert.match(granted.body, /Manage access/);
  const list = await boss.go('GET', '/admin');
  assert.is(list.status, 200);
  assert.match(list.body, /<td>127\.0\.0\.1<\/td><td>boss@adt\.test<\/td>/);
  const revoked = await boss.go('POST', '/admin/revoke', { csrf: boss.csrfOf(list.body), ip: '127.0.0.1' });
  assert.is(revoked.status, 200);
  assert.match(revoked.body, /No current grants/);
  assert.equal(await ctx.store.listOf(keys.authorisedIps), []);
});

test('mail: the client refuses header injection; the catcher keeps what it got', async (ctx) => {
  await rejects(
    sendMail(
      { host: '127.0.0.1', port: ctx.mail.port },
      { from: 'a@adt.test', to: 'b@adt.test', subject: 'x\r\nBcc: eve@evil.test', text: 'hi' },
    ),
    /one line/,
  );
  await sendMail(
    { host: '127.0.0.1', port: ctx.mail.port },
    { from: 'a@adt.test', to: 'b@adt.test', subject: 'Dots', text: '.leading dot\nline two' },
  );
  assert.equal(ctx.mail.messages.at(-1), { from: 'a@adt.test', to: 'b@adt.test', subject: 'Dots', text: '.leading dot\nline two' });
});

test.run();
