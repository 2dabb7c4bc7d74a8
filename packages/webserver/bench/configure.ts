/**
 * Configuring and starting the web server for a site, until it answers over HTTPS: ours (the
 * whole configuration rendered from data in-process, one `nginx -t`, start) against the original's
 * way (copy a template with placeholders, one `sed -i` per placeholder, `openssl dhparam 2048`,
 * `nginx -t`, start: what its Install<WS>ConfigurationForWebserver.sh does on every webserver
 * build, see ../shared/reference/adt-autoscaler-webserver-configstore.md §3.6). Same nginx, same
 * certificate, same loopback port, same run. Our TLS is ECDHE only (an EC certificate), so it
 * needs no DH parameters.
 *
 * Run: npm run bench -w @adt/webserver   (or: npx tsx packages/webserver/bench/configure.ts [--rounds N] [--json])
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execaRunner, freePort } from '@adt/core';
import {
  ensureCa,
  issueCertificate,
  nginxConfig,
  startOrReload,
  stopNginx,
  writeNginxConfig,
  type NginxOptions,
  type SiteOptions,
} from '../src/index.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, json: { type: 'boolean' } } });
const rounds = Math.max(1, Number(values.rounds));
const runner = execaRunner({ timeoutMs: 300_000 });
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const NAME = 'bench.adt.test';

/** One HTTPS GET of /hello.txt; resolves with the status (0 when refused). */
function get(port: number, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/hello.txt', servername: NAME, ca, headers: { host: NAME }, agent: false, timeout: 5000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Bounded wait (10 s) for the site's first 200. */
async function untilServing(port: number, ca: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if ((await get(port, ca)) === 200) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the site did not answer within 10 s');
}

const dir = await mkdtemp(join(tmpdir(), 'adt-bench-web-'));
const o: NginxOptions = { confFile: join(dir, 'etc/nginx.conf'), pidFile: join(dir, 'run/nginx.pid'), logDir: join(dir, 'log'), runner };
try {
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'www'), { recursive: true });
  await mkdir(join(dir, 'run'), { recursive: true });
  await writeFile(join(dir, 'www/hello.txt'), 'hello\n');
  const ca = await ensureCa(runner, join(dir, 'ca'), 'ADT bench CA');
  const cert = await issueCertificate(runner, ca, join(dir, 'tls'), [NAME]);
  const caPem = await readFile(ca.certFile, 'utf8');
  const port = await freePort();
  const site: SiteOptions = {
    serverNames: [NAME],
    https: [{ address: '127.0.0.1', port }],
    webroot: join(dir, 'www'),
    certChainFile: cert.chainFile,
    keyFile: cert.keyFile,
    phpSocket: join(dir, 'run/php.sock'),
  };

  // The original's template: the same configuration with its site values as placeholders, plus
  // the DH parameters line its templates carry.
  const placeholders: [string, string][] = [
    ['XXXXWEBSITEURLXXXX', NAME],
    ['XXXXPORTXXXX', String(port)],
    ['XXXXWEBROOTXXXX', site.webroot],
    ['XXXXCERTXXXX', cert.chainFile],
    ['XXXXKEYXXXX', cert.keyFile],
    ['XXXXPHPSOCKETXXXX', site.phpSocket],
    ['XXXXDHPARAMXXXX', join(dir, 'tls/dhparam.pem')],
  ];
  let template = nginxConfig(o, site).replace(
    `ssl_certificate_key ${cert.keyFile};`,
    `ssl_certificate_key ${cert.keyFile};\n    ssl_dhparam ${join(dir, 'tls/dhparam.pem')};`,
  );
  for (const [ph, value] of placeholders) template = template.split(value).join(ph);
  await mkdir(join(dir, 'templates'), { recursive: true });
  await writeFile(join(dir, 'templates/nginx.conf.tmpl'), template);

  const ours: number[] = [];
  const original: number[] = [];
  const dhparam: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Ours.
    let t0 = process.hrtime.bigint();
    await writeNginxConfig(o, site);
    await startOrReload(o);
    await untilServing(port, caPem);
    ours.push(ms(t0));
    await stopNginx(o);
    await rm(o.confFile, { force: true });

    // The original's way.
    t0 = process.hrtime.bigint();
    await mkdir(join(dir, 'etc'), { recursive: true });
    await copyFile(join(dir, 'templates/nginx.conf.tmpl'), o.confFile);
    for (const [ph, value] of placeholders) await runner.run(['sed', '-i', `s#${ph}#${value}#g`, o.confFile]);
    const t1 = process.hrtime.bigint();
    await runner.run(['openssl', 'dhparam', '-out', join(dir, 'tls/dhparam.pem'), '2048'], { timeoutMs: 600_000 });
    dhparam.push(ms(t1));
    await runner.run(['nginx', '-t', '-q', '-c', o.confFile]);
    await runner.run(['nginx', '-c', o.confFile]);
    await untilServing(port, caPem);
    original.push(ms(t0));
    await stopNginx(o);
    await rm(join(dir, 'tls/dhparam.pem'), { force: true });
  }
  const out = {
    rounds,
    oursMs: median(ours),
    originalMs: median(original),
    dhparamMs: median(dhparam),
    originalWithoutDhparamMs: median(original.map((x, i) => x - dhparam[i]!)),
    ratio: median(original) / median(ours),
    machine: `${cpus().length} x ${cpus()[0]?.model.trim()}`,
  };
  if (values.json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(`Configure + start nginx for a site until it answers over HTTPS (median of ${rounds}, ${out.machine})`);
    console.log(`  ours (render in-process, nginx -t, start)             ${out.oursMs.toFixed(0).padStart(7)} ms`);
    console.log(
      "  original's way (template, sed per placeholder,        " +
        `${out.originalMs.toFixed(0).padStart(7)} ms   ${out.ratio.toFixed(1)}x slower`,
    );
    console.log(`    openssl dhparam 2048, nginx -t, start)`);
    console.log(`      of which openssl dhparam 2048                     ${out.dhparamMs.toFixed(0).padStart(7)} ms`);
    console.log(`      without dhparam                                   ${out.originalWithoutDhparamMs.toFixed(0).padStart(7)} ms`);
  }
} finally {
  await stopNginx(o).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}
