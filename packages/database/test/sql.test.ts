import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { provisionSql, hostPattern, sqlString } from '../src/index.ts';

const sql = suite('provisioning SQL');
const spec = { database: 'wordpress', user: 'wp_app', password: "p'a\\ss-word-0123456789", allowFrom: ['198.18.1.0/24'] };

sql('creates the database, the user per allowed network, grants on that database only', () => {
  const s = provisionSql(spec);
  assert.match(s, /CREATE DATABASE IF NOT EXISTS `wordpress` CHARACTER SET utf8mb4/);
  assert.match(s, /CREATE USER IF NOT EXISTS 'wp_app'@'198\.18\.1\.0\/255\.255\.255\.0' IDENTIFIED BY 'p\\'a\\\\ss-word-0123456789';/);
  assert.match(s, /GRANT ALL PRIVILEGES ON `wordpress`\.\* TO 'wp_app'@'198\.18\.1\.0\/255\.255\.255\.0';/);
  assert.not.match(s, /ON \*\.\*/);
});

sql('drops the user at hosts that are no longer allowed', () => {
  const s = provisionSql(spec, ['198.18.1.0/255.255.255.0', '198.18.9.7']);
  assert.match(s, /DROP USER IF EXISTS 'wp_app'@'198\.18\.9\.7';/);
  assert.not.match(s, /DROP USER IF EXISTS 'wp_app'@'198\.18\.1\.0/);
});

sql('host patterns: addresses as is, CIDRs as network/netmask, nothing wider than /8', () => {
  assert.is(hostPattern('198.18.1.20'), '198.18.1.20');
  assert.is(hostPattern('198.18.1.20/32'), '198.18.1.20');
  assert.is(hostPattern('198.18.1.77/24'), '198.18.1.0/255.255.255.0');
  assert.is(hostPattern('198.18.0.0/15'), '198.18.0.0/255.254.0.0');
  for (const bad of ['0.0.0.0/0', '%', '198.0.0.0/7', 'db.example.com', '198.18.1.0/33', '198.18.1.0/x', '2001:db8::/32', '']) {
    throws(() => hostPattern(bad), { code: 'BAD_SOURCE', exitCode: 2 }, bad);
  }
});

sql('string literals escape quotes and backslashes and refuse NUL', () => {
  assert.is(sqlString("a'b"), "'a\\'b'");
  assert.is(sqlString('a\\b'), "'a\\\\b'");
  assert.throws(() => sqlString('a\0b'));
});

sql('a bad spec reports every problem at once with exit code 2', () => {
  const e = throws(() => provisionSql({ database: 'bad-name', user: 'root', password: 'short', allowFrom: [] }), { exitCode: 2 });
  for (const f of ['database:', 'user:', 'password:', 'allowFrom:']) assert.ok(e.message.includes(f), f);
  assert.not.ok(e.message.includes('short'), 'the password is not echoed');
});

sql.run();
