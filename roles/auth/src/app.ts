/**
 * The authentication server's web app (served over HTTPS by the auth role): a person on the
 * allow-list asks for a sign-in link by email; the link, used once before it expires, grants the
 * client address **of that HTTPS connection** access to the site's 443 for a while (a grant in the
 * datastore that the webservers' firewalls follow). Admins (also signed in by link) list and revoke
 * grants.
 *
 * Security: links are 256-bit random, stored only as SHA-256, single-use (the first use takes a
 * datastore lease on them, so two uses at once cannot both succeed) and expire; every form carries a
 * CSRF token bound to a cookie; all output is escaped; sign-in requests are rate limited per client
 * address and per email; forwarded-address headers are ignored; every refusal is logged (never a
 * token). The app holds only the datastore: no cloud credentials.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { keys, type ConfigStore, type Grant } from '@adt/configstore';

export interface AuthAppOptions {
  store: ConfigStore;
  /** Addresses that may sign in (lowercase). */
  allowList: string[];
  /** Of those, who may list and revoke grants. */
  admins: string[];
  /** The public URL of this app, e.g. https://auth.example.com (links point there). */
  baseUrl: string;
  /** The site people get access to (for the pages). */
  siteName: string;
  /** Minutes a grant lasts (default 480) and a link lives (default 15). */
  grantMinutes?: number;
  linkMinutes?: number;
  /** Sends the sign-in mail. */
  sendMail(to: string, subject: string, text: string): Promise<void>;
  /** 32 random bytes: signs CSRF tokens and admin sessions. */
  secret: Buffer;
  log(line: string): void;
  now?: () => number;
  /** Sign-in requests allowed per client address and per email in 10 minutes (default 10 and 5). */
  limits?: { perAddress: number; perEmail: number };
}

/** Counts events per key in a sliding window; bounded in keys. */
export class RateLimiter {
  readonly #hits = new Map<string, number[]>();
  readonly limit: number;
  readonly windowMs: number;
  readonly maxKeys: number;
  constructor(limit: number, windowMs: number, maxKeys = 10_000) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
  }
  /** Records an attempt; false when over the limit. */
  allow(key: string, now: number): boolean {
    const recent = (this.#hits.get(key) ?? []).filter((t) => now - t < this.windowMs);
    recent.push(now);
    this.#hits.delete(key);
    this.#hits.set(key, recent);
    if (this.#hits.size > this.maxKeys) this.#hits.delete(this.#hits.keys().next().value!);
    return recent.length <= this.limit;
  }
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const EMAIL = /^[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,63}$/;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The client address of the connection itself (IPv4-mapped IPv6 shown as IPv4). Headers are never trusted. */
export function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)?.[1];
  return v4 ?? a;
}

/** The pages' only style, inline (the content security policy allows no other source). */
const STYLE =
  'body{font:1.1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}' +
  'label{display:block;margin:.5rem 0 .25rem}input,button{font:inherit;padding:.5rem}button{cursor:pointer}' +
  ':focus{outline:3px solid #1d4ed8;outline-offset:2px}table{border-collapse:collapse}td,th{padding:.25rem .75rem;text-align:left}';

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>
<style>${STYLE}</style></head>
<body><main>
<h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>
`;
}

export function createAuthApp(o: AuthAppOptions) {
  const now = () => o.now?.() ?? Date.now();
  const allow = new Set(o.allowList.map((e) => e.toLowerCase()));
  const admins = new Set(o.admins.map((e) => e.toLowerCase()));
  const grantMs = (o.grantMinutes ?? 480) * 60_000;
  const grantHours = Math.round((grantMs / 3_600_000) * 10) / 10;
  const linkMs = (o.linkMinutes ?? 15) * 60_000;
  const byAddress = new RateLimiter(o.limits?.perAddress ?? 10, 600_000);
  const byEmail = new RateLimiter(o.limits?.perEmail ?? 5, 600_000);
  const sign = (what: string) => createHmac('sha256', o.secret).update(what).digest('base64url');
  const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

  function cookies(req: IncomingMessage): Record<string, string> {
    return Object.fromEntries(
      (req.headers.cookie ?? '')
        .split(';')
        .map((c) => c.trim().split('='))
        .filter((p) => p.length === 2) as [string, string][],
    );
  }
  /** The CSRF cookie (set when absent) and the token forms must carry. */
  function csrf(req: IncomingMessage, res: ServerResponse): string {
    let id = cookies(req).adt_csrf;
    if (!id || !/^[A-Za-z0-9_-]{22,64}$/.test(id)) {
      id = randomBytes(18).toString('base64url');
      res.setHeader('Set-Cookie', `adt_csrf=${id}; Path=/; Secure; HttpOnly; SameSite=Strict`);
    }
    return sign(`csrf:${id}`);
  }
  function csrfOk(req: IncomingMessage, form: URLSearchParams): boolean {
    const id = cookies(req).adt_csrf;
    return Boolean(id) && same(form.get('csrf') ?? '', sign(`csrf:${id}`));
  }
  function adminOf(req: IncomingMessage): string | null {
    const v = cookies(req).adt_admin;
    if (!v) return null;
    const [email64, exp, mac] = v.split('.');
    if (!email64 || !exp || !mac || !same(mac, sign(`admin:${email64}.${exp}`)) || Number(exp) < now()) return null;
    const email = Buffer.from(email64, 'base64url').toString('utf8');
    return admins.has(email) ? email : null;
  }

  function send(res: ServerResponse, status: number, html: string) {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
      'strict-transport-security': 'max-age=86400',
    });
    res.end(html);
  }
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, why: string, html: string) => {
    o.log(`refused ${req.method} ${new URL(req.url ?? '/', 'https://x').pathname} from ${clientAddress(req)}: ${why}`);
    send(res, status, page('Not possible', html));
  };

  async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 8192) throw new Error('form too large');
      chunks.push(c as Buffer);
    }
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  }

  const signInForm = (token: string, note = '') =>
    page(
      `Sign in to reach ${o.siteName}`,
      `${note}
<p>Enter your email address. If it may reach the site, you get a link that opens it from this device for ${grantHours} hours.</p>
<form method="post" action="/sign-in">
<input type="hidden" name="csrf" value="${escapeHtml(token)}">
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" required>
<p><button type="submit">Send me a sign-in link</button></p>
</form>`,
    );

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', o.baseUrl);
    const ip = clientAddress(req);
    if (req.method === 'GET' && url.pathname === '/') return send(res, 200, signInForm(csrf(req, res)));
    if (req.method === 'POST' && url.pathname === '/sign-in') {
      const form = await readForm(req);
      if (!csrfOk(req, form))
        return refuse(req, res, 403, 'CSRF token missing or wrong', '<p>This form expired. <a href="/">Start again</a>.</p>');
      const email = (form.get('email') ?? '').trim().toLowerCase();
      if (!byAddress.allow(ip, now()) || (EMAIL.test(email) && !byEmail.allow(email, now()))) {
        return refuse(req, res, 429, 'too many sign-in attempts', '<p>Too many attempts. Wait ten minutes and try again.</p>');
      }
      if (EMAIL.test(email) && allow.has(email)) {
        const token = randomBytes(32).toString('base64url');
        await o.store.put(`auth/links/${sha256(token)}`, { email, expiresAt: new Date(now() + linkMs).toISOString() });
        await o.sendMail(
          email,
          `Your sign-in link for ${o.siteName}`,
          `Open this link on the device that should reach ${o.siteName} (valid ${Math.round(linkMs / 60_000)} minutes, once):\n\n` +
            `${o.baseUrl}/verify?token=${token}\n\n` +
            'If you did not ask for it, ignore this message.\n',
        );
        o.log(`sign-in link sent to ${email} (asked from ${ip})`);
      } else {
        o.log(`sign-in asked for an address not on the allow-list from ${ip}`);
      }
      // The same answer either way: the page does not tell who is on the list.
      return send(
        res,
        200,
        page(
          'Check your email',
          `<p>If <strong>${escapeHtml(email)}</strong> may reach ${escapeHtml(o.siteName)}, a sign-in link is on its way. ` +
            'Open it on the device that should reach the site.</p>',
        ),
      );
    }
    if (url.pathname === '/verify') {
      const token = req.method === 'GET' ? (url.searchParams.get('token') ?? '') : '';
      if (req.method === 'GET') {
        // A confirmation step: mail scanners that fetch links must not use them up.
        return send(
          res,
          200,
          page(
            'Open the site from this device',
            `<form method="post" action="/verify">
<input type="hidden" name="csrf" value="${escapeHtml(csrf(req, res))}">
<input type="hidden" name="token" value="${escapeHtml(token.slice(0, 100))}">
<p><button type="submit">Give this device access</button></p>
</form>`,
          ),
        );
      }
      if (req.method !== 'POST') return refuse(req, res, 405, 'method', '<p>Not allowed.</p>');
      const form = await readForm(req);
      if (!csrfOk(req, form))
        return refuse(req, res, 403, 'CSRF token missing or wrong', '<p>This form expired. Open the link from your email again.</p>');
      const t = form.get('token') ?? '';
      if (!/^[A-Za-z0-9_-]{43}$/.test(t)) return refuse(req, res, 400, 'malformed link', '<p>This link is not valid.</p>');
      const hash = sha256(t);
      const link = (await o.store.get(`auth/links/${hash}`)) as { email: string; expiresAt: string } | null;
      if (!link) return refuse(req, res, 410, 'unknown link', '<p>This link is not valid. <a href="/">Ask for a new one</a>.</p>');
      if (Date.parse(link.expiresAt) <= now())
        return refuse(req, res, 410, `expired link of ${link.email}`, '<p>This link has expired. <a href="/">Ask for a new one</a>.</p>');
      // Single use: the first use takes a lease on the link; any other use finds it taken.
      // (A fresh owner per use: the same client using the link twice is a second use too.)
      const first = await o.store.acquire(
        `auth-link-${hash.slice(0, 40)}`,
        Math.ceil(linkMs / 1000) + 60,
        `use-${randomBytes(8).toString('hex')}`,
      );
      if (!first)
        return refuse(
          req,
          res,
          410,
          `reused link of ${link.email}`,
          '<p>This link was used already. <a href="/">Ask for a new one</a>.</p>',
        );
      if (isIP(ip) === 0) return refuse(req, res, 400, 'no client address', '<p>Your address could not be read.</p>');
      const grant: Grant = { expiresAt: new Date(now() + grantMs).toISOString(), subject: link.email };
      await o.store.put(keys.authorisedIps.key(ip), grant);
      o.log(`access granted to ${ip} for ${link.email} until ${grant.expiresAt}`);
      if (admins.has(link.email)) {
        const email64 = Buffer.from(link.email).toString('base64url');
        const exp = String(now() + 3_600_000);
        res.setHeader(
          'Set-Cookie',
          `adt_admin=${email64}.${exp}.${sign(`admin:${email64}.${exp}`)}; Path=/; Secure; HttpOnly; SameSite=Strict`,
        );
      }
      const until = escapeHtml(new Date(grant.expiresAt).toUTCString());
      const manage = admins.has(link.email) ? '<p><a href="/admin">Manage access</a></p>' : '';
      return send(
        res,
        200,
        page('Access granted', `<p>This device (${escapeHtml(ip)}) may reach ${escapeHtml(o.siteName)} until ${until}.</p>${manage}`),
      );
    }
    if (url.pathname === '/admin' || url.pathname === '/admin/revoke') {
      const admin = adminOf(req);
      if (!admin)
        return refuse(req, res, 403, 'not an admin session', '<p>Sign in as an administrator first. <a href="/">Sign in</a>.</p>');
      if (req.method === 'POST' && url.pathname === '/admin/revoke') {
        const form = await readForm(req);
        if (!csrfOk(req, form)) return refuse(req, res, 403, 'CSRF token missing or wrong', '<p>This form expired.</p>');
        const target = form.get('ip') ?? '';
        if (isIP(target) === 0) return refuse(req, res, 400, 'bad address', '<p>Not an address.</p>');
        await o.store.delete(keys.authorisedIps.key(target));
        o.log(`grant of ${target} revoked by ${admin}`);
      }
      const token = csrf(req, res);
      const rows = [];
      for (const gip of await o.store.listOf(keys.authorisedIps)) {
        const g = await o.store.get(keys.authorisedIps.key(gip));
        if (!g || Date.parse(g.expiresAt) <= now()) continue;
        const revoke =
          '<form method="post" action="/admin/revoke">' +
          `<input type="hidden" name="csrf" value="${escapeHtml(token)}"><input type="hidden" name="ip" value="${escapeHtml(gip)}">` +
          `<button type="submit">Revoke ${escapeHtml(gip)}</button></form>`;
        const cells = [gip, g.subject ?? '', g.expiresAt].map((text) => `<td>${escapeHtml(text)}</td>`).join('');
        rows.push(`<tr>${cells}<td>${revoke}</td></tr>`);
      }
      return send(
        res,
        200,
        page(
          'Who may reach the site',
          rows.length
            ? '<table><caption>Current grants</caption><thead><tr>' +
                '<th scope="col">Address</th><th scope="col">Person</th><th scope="col">Until</th><th scope="col">Action</th>' +
                `</tr></thead><tbody>${rows.join('')}</tbody></table>`
            : '<p>No current grants.</p>',
        ),
      );
    }
    return send(res, 404, page('Not found', '<p><a href="/">Sign in</a></p>'));
  }

  return (req: IncomingMessage, res: ServerResponse) => {
    // Only over TLS: the grant is for the address of an HTTPS connection.
    if (!(req.socket as TLSSocket).encrypted) return refuse(req, res, 400, 'not HTTPS', '<p>Use HTTPS.</p>');
    handle(req, res).catch((e: Error) => {
      o.log(`error on ${req.method} ${req.url?.split('?')[0]}: ${e.message}`);
      if (!res.headersSent) send(res, 500, page('Something went wrong', '<p>Try again in a moment.</p>'));
    });
  };
}
