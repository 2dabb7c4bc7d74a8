/**
 * The web tier for real, on loopback, once with nginx and once with apache: MariaDB (from
 * @adt/database), php-fpm and the web server with configs of their own in a temporary directory,
 * a certificate from a fresh local CA, and Debian's WordPress.
 * The only file outside the temporary directory is WordPress's per-site config in /etc/wordpress
 * (where Debian's package looks), under a unique name, removed afterwards.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execaRunner, freePort } from '@adt/core';
import { removeTempDir, tempDir } from '@adt/test-utils';
import * as maria from '@adt/database/engines/mariadb';
import * as web from '../src/index.ts';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTPS request to the site on a loopback port; the Host header is the bare name, as browsers send it to 443. */
function fetchTls(
  port: number,
  host: string,
  path: string,
  options: { ca?: string; method?: string; form?: Record<string, string> } = {},
): Promise<Res> {
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        servername: host,
        ca: options.ca,
        headers: {
          host,
          ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** One web server's lifecycle, so that both run the same tests. */
interface Tier {
  write(site: web.SiteOptions): Promise<void>;
  start(): Promise<number>;
  stop(): Promise<void>;
  pidFile: string;
  logs: string[];
  serverHeader: string;
}

interface Ctx {
  dir: string;
  site: string;
  port: number;
  ca: string;
  db: maria.MariaDbOptions;
  nginx: web.NginxOptions;
  tier: Tier;
  fpm: web.PhpFpmOptions;
  wpConfig?: string;
  dbPassword: string;
}
const runner = execaRunner({ timeoutMs: 120_000 });

function tierOf(kind: 'nginx' | 'apache', dir: string): Tier {
  if (kind === 'nginx') {
    const o: web.NginxOptions = {
      confFile: join(dir, 'etc/nginx.conf'),
      pidFile: join(dir, 'run/nginx.pid'),
      logDir: join(dir, 'log/nginx'),
      runner,
    };
    return {
      write: (s) => web.writeNginxConfig(o, s),
      start: () => web.startOrReload(o),
      stop: () => web.stopNginx(o),
      pidFile: o.pidFile,
      logs: [join(o.logDir, 'adt-error.log'), join(o.logDir, 'adt-access.log')],
      serverHeader: 'nginx',
    };
  }
  const o: web.ApacheOptions = {
    confFile: join(dir, 'etc/apache.conf'),
    pidFile: join(dir, 'run/apache.pid'),
    logDir: join(dir, 'log/apache'),
    runDir: join(dir, 'run/apache'),
    runner,
  };
  return {
    write: (s) => web.writeApacheConfig(o, s),
    start: () => web.startOrReloadApache(o),
    stop: () => web.stopApache(o),
    pidFile: o.pidFile,
    logs: [join(o.logDir, 'adt-error.log'), join(o.logDir, 'adt-access.log')],
    serverHeader: 'Apache',
  };
}

for (const kind of ['nginx', 'apache'] as const) {
  const test = suite<Ctx>(`web tier on loopback (${kind} + php-fpm + WordPress + MariaDB)`);

  test.before(async (ctx) => {
    ctx.dir = await tempDir('web', { mode: 0o755 }); // mysql and www-data reach their files inside
    ctx.site = `wp-${randomBytes(3).toString('hex')}.adt.test`;
    ctx.port = await freePort();
    ctx.dbPassword = `${randomBytes(18).toString('base64')}'q\\`;
    ctx.db = {
      dataDir: join(ctx.dir, 'mysql'),
      runDir: join(ctx.dir, 'run/mysqld'),
      configFile: join(ctx.dir, 'etc/my.cnf'),
      logFile: join(ctx.dir, 'log/mysql.log'),
      bindAddress: '127.0.0.1',
      port: await freePort(),
      runner,
    };
    ctx.fpm = {
      confFile: join(ctx.dir, 'etc/fpm.conf'),
      pidFile: join(ctx.dir, 'run/fpm.pid'),
      logFile: join(ctx.dir, 'log/fpm.log'),
      socket: join(ctx.dir, 'run/php/fpm.sock'),
      runner,
    };
    ctx.nginx = {
      confFile: join(ctx.dir, 'etc/nginx.conf'),
      pidFile: join(ctx.dir, 'run/nginx.pid'),
      logDir: join(ctx.dir, 'log/nginx'),
      runner,
    };
    ctx.tier = tierOf(kind, ctx.dir);
  });

  test.after(async (ctx) => {
    await ctx.tier?.stop().catch(() => {});
    await web.stopPhpFpm(ctx.fpm).catch(() => {});
    await maria.stop(ctx.db).catch(() => {});
    if (ctx.wpConfig) await rm(ctx.wpConfig, { force: true });
    await removeTempDir(ctx.dir);
  });

  if (kind === 'apache')
    test('the apache builder produces the same hardened site, as data', ({ site, dir }) => {
      const o = { confFile: '/c.conf', pidFile: '/p', logDir: '/l', runDir: '/r' };
      const conf = web.apacheConfig(o, {
        serverNames: [site, 'alias.adt.test'],
        https: [{ address: '198.18.0.10', port: 443 }],
        httpRedirect: [{ address: '198.18.0.10', port: 80 }],
        webroot: '/usr/share/wordpress',
        certChainFile: '/c',
        keyFile: '/k',
        phpSocket: '/s.sock',
        fastcgiParams: { WORDPRESS_CONFIG: 'x' },
      });
      for (const line of [
        'Listen 198.18.0.10:443 https',
        'ServerTokens Prod',
        'SSLProtocol -all +TLSv1.2 +TLSv1.3',
        'SetEnv WORDPRESS_CONFIG x',
        'ServerAlias alias.adt.test',
        'RewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [R=301,L]',
        'SetHandler "proxy:unix:/s.sock|fcgi://localhost"',
      ]) {
        assert.ok(conf.includes(line), line);
      }
      assert.throws(
        () =>
          web.apacheConfig(o, {
            serverNames: [site],
            https: [{ address: '127.0.0.1', port: 1 }],
            webroot: '/x y',
            certChainFile: '/c',
            keyFile: '/k',
            phpSocket: '/s',
          }),
        /webroot/,
      );
      assert.throws(
        () =>
          web.apacheConfig(o, {
            serverNames: [site],
            https: [{ address: '127.0.0.1', port: 1 }],
            webroot: '/',
            certChainFile: '/c',
            keyFile: '/k',
            phpSocket: '/s',
            fastcgiParams: { X: 'a\nb' },
          }),
        /fastcgi parameter/,
      );
      void dir;
    });

  if (kind === 'nginx')
    test('the builders produce the hardened configuration, as data', ({ site, nginx, fpm }) => {
      const conf = web.nginxConfig(nginx, {
        serverNames: [site],
        https: [{ address: '198.18.0.10', port: 443 }],
        httpRedirect: [{ address: '198.18.0.10', port: 80 }],
        webroot: '/usr/share/wordpress',
        certChainFile: '/c',
        keyFile: '/k',
        phpSocket: '/s.sock',
        fastcgiParams: { WORDPRESS_CONFIG: 'x' },
      });
      for (const line of [
        'listen 198.18.0.10:443 ssl http2;',
        'server_tokens off;',
        'ssl_protocols TLSv1.2 TLSv1.3;',
        'fastcgi_param WORDPRESS_CONFIG x;',
        'return 301 https://$host$request_uri;',
        'location ~ /\\.(?!well-known/) { deny all; }',
      ]) {
        assert.ok(conf.includes(line), line);
      }
      assert.throws(
        () =>
          web.nginxConfig(nginx, {
            serverNames: ['bad name;'],
            https: [{ address: '127.0.0.1', port: 1 }],
            webroot: '/',
            certChainFile: '/c',
            keyFile: '/k',
            phpSocket: '/s',
          }),
        /not a DNS name/,
      );
      assert.throws(
        () =>
          web.nginxConfig(nginx, {
            serverNames: [site],
            https: [{ address: '127.0.0.1', port: 1 }],
            webroot: '/',
            certChainFile: '/c',
            keyFile: '/k',
            phpSocket: '/s',
            fastcgiParams: { X: 'a; evil' },
          }),
        /fastcgi parameter/,
      );
      const pool = web.phpFpmConfig(fpm);
      for (const line of ['clear_env = yes', 'security.limit_extensions = .php', 'php_admin_flag[display_errors] = off'])
        assert.ok(pool.includes(line), line);
      const php = web.wordpressConfigPhp({
        siteUrl: `https://${site}`,
        db: { host: '198.18.1.20', port: 3306, name: 'wp', user: 'wp_app', password: "it's\\x" },
      });
      assert.match(php, /define\('DB_PASSWORD', 'it\\'s\\\\x'\);/);
      assert.throws(
        () => web.wordpressConfigPhp({ siteUrl: `http://${site}`, db: { host: 'h', port: 1, name: 'n', user: 'u', password: 'p' } }),
        /https/,
      );
    });

  test('a local CA issues a certificate that a client trusting the CA accepts for the site name', async (ctx) => {
    const ca = await web.ensureCa(runner, join(ctx.dir, 'ca'));
    assert.is((await stat(ca.keyFile)).mode & 0o777, 0o600);
    const cert = await web.issueCertificate(runner, ca, join(ctx.dir, 'tls'), [ctx.site, '127.0.0.1']);
    assert.is((await stat(cert.keyFile)).mode & 0o777, 0o600);
    ctx.ca = await readFile(ca.certFile, 'utf8');
    const again = await web.ensureCa(runner, join(ctx.dir, 'ca'));
    assert.is(await readFile(again.certFile, 'utf8'), ctx.ca, 'an existing CA is kept');
  });

  test(`MariaDB, php-fpm and ${kind} start, and the site answers over HTTPS`, async (ctx) => {
    await maria.initialise(ctx.db);
    await maria.start(ctx.db);
    await maria.provision(ctx.db, { database: 'wordpress', user: 'wp_app', password: ctx.dbPassword, allowFrom: ['127.0.0.1'] });
    ctx.wpConfig = await web.writeWordPressConfig('/etc/wordpress', {
      siteUrl: `https://${ctx.site}`,
      db: { host: '127.0.0.1', port: ctx.db.port!, name: 'wordpress', user: 'wp_app', password: ctx.dbPassword },
    });
    const st = await stat(ctx.wpConfig);
    assert.is(st.mode & 0o777, 0o600);
    await web.writePhpFpmConfig(ctx.fpm);
    await web.startOrReloadPhpFpm(ctx.fpm);
    await ctx.tier.write({
      serverNames: [ctx.site],
      https: [{ address: '127.0.0.1', port: ctx.port }],
      webroot: '/usr/share/wordpress',
      certChainFile: join(ctx.dir, 'tls/fullchain.pem'),
      keyFile: join(ctx.dir, 'tls/server.key'),
      phpSocket: ctx.fpm.socket,
      fastcgiParams: { WORDPRESS_CONFIG: web.configName(`https://${ctx.site}`) },
      contentAlias: { urlPath: '/wp-content/', dir: `${join(ctx.dir, 'wp-content')}/` },
    });
    await ctx.tier.start();
    const home = await fetchTls(ctx.port, ctx.site, '/', { ca: ctx.ca });
    assert.is(home.status, 302, home.body.slice(0, 300));
    assert.match(String(home.headers.location), /\/wp-admin\/install\.php$/, 'WordPress reached its database and asks to be installed');
    assert.is(home.headers.server, ctx.tier.serverHeader, 'no version in the Server header');
  });

  test('WordPress installs through its own form, and its front page comes from the database', async (ctx) => {
    const page = await fetchTls(ctx.port, ctx.site, '/wp-admin/install.php', { ca: ctx.ca });
    assert.is(page.status, 200);
    assert.match(page.body, /WordPress/);
    const done = await fetchTls(ctx.port, ctx.site, '/wp-admin/install.php?step=2', {
      ca: ctx.ca,
      method: 'POST',
      form: {
        weblog_title: 'ADT Test Site',
        user_name: 'admin',
        admin_password: 'Adm1n-Pa55-long-enough',
        admin_password2: 'Adm1n-Pa55-long-enough',
        admin_email: 'admin@adt.test',
        blog_public: '0',
        language: '',
      },
    });
    assert.is(done.status, 200);
    assert.match(done.body, /Success!/);
    const front = await fetchTls(ctx.port, ctx.site, '/', { ca: ctx.ca });
    assert.is(front.status, 200, `${front.status} -> ${front.headers.location} by ${front.headers['x-redirect-by']}`);
    assert.match(front.body, /ADT Test Site/);
  });

  test("the site's own files are served from the content directory; PHP there is refused, never shown", async (ctx) => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(join(ctx.dir, 'wp-content/uploads/2026/11'), { recursive: true });
    await writeFile(join(ctx.dir, 'wp-content/uploads/2026/11/photo.txt'), 'uploaded by a user\n');
    await writeFile(join(ctx.dir, 'wp-content/uploads/shell.php'), '<?php echo "SOURCE-LEAK"; ?>');
    await writeFile(join(ctx.dir, 'wp-content/plugin.php'), '<?php echo "SOURCE-LEAK"; ?>');
    await chmod(join(ctx.dir, 'wp-content'), 0o755);
    const file = await fetchTls(ctx.port, ctx.site, '/wp-content/uploads/2026/11/photo.txt', { ca: ctx.ca });
    assert.is(file.status, 200);
    assert.is(file.body, 'uploaded by a user\n');
    for (const path of ['/wp-content/uploads/shell.php', '/wp-content/plugin.php']) {
      const r = await fetchTls(ctx.port, ctx.site, path, { ca: ctx.ca });
      assert.is(r.status, 403, path);
      assert.not.ok(r.body.includes('SOURCE-LEAK'), path);
    }
  });

  test('hidden files are refused, and a client that does not trust the CA is refused', async (ctx) => {
    assert.is((await fetchTls(ctx.port, ctx.site, '/.env', { ca: ctx.ca })).status, 403);
    assert.is((await fetchTls(ctx.port, ctx.site, '/.git/config', { ca: ctx.ca })).status, 403);
    const untrusted = await fetchTls(ctx.port, ctx.site, '/').then(
      () => 'accepted',
      (e: Error) => e.message,
    );
    assert.match(untrusted, /self-signed|unable to verify|certificate/i);
  });

  test('the database password appears in no process command line and in no log', async (ctx) => {
    const { readdir } = await import('node:fs/promises');
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      assert.not.ok(cmd.includes(ctx.dbPassword.slice(0, 12)), `pid ${pid}`);
    }
    for (const log of [ctx.db.logFile, ctx.fpm.logFile, ...ctx.tier.logs]) {
      const text = await readFile(log, 'utf8').catch(() => '');
      assert.not.ok(text.includes(ctx.dbPassword.slice(0, 12)), log);
    }
  });

  test('everything stops and nothing keeps running', async (ctx) => {
    const pids = await Promise.all(
      [ctx.tier.pidFile, ctx.fpm.pidFile, join(ctx.db.runDir, 'mysqld.pid')].map((f) => readFile(f, 'utf8').then(Number)),
    );
    await ctx.tier.stop();
    await web.stopPhpFpm(ctx.fpm);
    await maria.stop(ctx.db);
    const { processAlive } = await import('@adt/core');
    for (const pid of pids) assert.not.ok(processAlive(pid), `pid ${pid} still alive`);
  });

  test.run();
}
