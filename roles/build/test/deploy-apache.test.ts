/**
 * WEBSERVER=apache: the same development fleet with apache + php-fpm on the webserver (cloud `tda`,
 * 198.19.38.0/24 + 198.19.39.0/24; the webserver's prepared image has both web servers), reached
 * from the outsider, then destroyed: nothing of the cloud left.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort } from '@adt/core';
import { installWordPress, siteCurl } from './_site.ts';
import { root } from './_fleet.ts';

// Bounded, generously: the machine is shared and a first deploy may prepare the role's image.
const run = (script: string, args: string[]) =>
  execa(join(root, 'node_modules/.bin/zx'), [join(root, 'roles/build', script), ...args], { cwd: root, reject: false, timeout: 1_500_000 });

const test = suite<{ dir: string; file: string }>('deploy with apache (development mode, local provider)');
test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-deploy-apache-'));
  ctx.file = join(ctx.dir, 'site.env');
  await writeFile(
    ctx.file,
    [
      'SITE_URL=blog.tda.test',
      'BUILD_ID=a1',
      'WEBSERVER=apache',
      `STATE_DIR=${join(ctx.dir, 'state')}`,
      `S3_PORT=${await freePort()}`,
      'LOCAL_CLOUD_ID=tda',
      'LOCAL_PUBLIC_CIDR=198.19.38.0/24',
      'LOCAL_PRIVATE_CIDR=198.19.39.0/24',
      'READY_TIMEOUT=600',
      '',
    ].join('\n'),
  );
});
test.after(async (ctx) => {
  if (ctx.file && existsSync(ctx.file)) await run('destroy.mjs', ['--config', ctx.file]);
  if (ctx.dir)
    await rm(ctx.dir, { recursive: true, force: true }).catch((e: Error) => process.stderr.write(`${ctx.dir} not removed: ${e.message}\n`));
});

test('apache serves WordPress over HTTPS, with its database, and destroy removes it all', async (ctx) => {
  const r = await run('deploy.mjs', ['--config', ctx.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stderr, /webserver: apache and php-fpm running/);
  const summary = JSON.parse(r.stdout) as { caFile: string; servers: { role: string; publicIp: string }[] };
  const ip = summary.servers.find((s) => s.role === 'webserver')!.publicIp;
  const curl = siteCurl('tda', summary.caFile, 'blog.tda.test', ip);
  const head = await curl('-o', '/dev/null', '-D', '-', 'https://blog.tda.test/');
  assert.match(head.stdout, /^HTTP\/1\.1 302/);
  assert.match(head.stdout, /\nserver: Apache\r?\n/i);
  assert.match(head.stdout, /\nlocation: https:\/\/blog\.tda\.test\/wp-admin\/install\.php/i);
  assert.is(await installWordPress(curl, 'blog.tda.test', 'Apache-served'), '200');
  assert.match((await curl('https://blog.tda.test/')).stdout, /Apache-served/);
  assert.is((await curl('-o', '/dev/null', '-w', '%{http_code}', 'https://blog.tda.test/.env')).stdout, '403', 'hidden files refused');
  const d = await run('destroy.mjs', ['--config', ctx.file]);
  assert.is(d.exitCode, 0, d.stderr);
  assert.not.ok((await execa('ip', ['netns', 'list'])).stdout.includes('tda-'), 'no namespace');
  assert.not.ok((await execa('ip', ['-o', 'link', 'show'])).stdout.includes('tda'), 'no link');
  assert.not.ok((await execa('iptables', ['-S'])).stdout.includes('ADT-tda-FW'), 'no firewall chain');
  assert.not.ok(existsSync(join(ctx.dir, 'state')), 'no state left');
});

test.run();
