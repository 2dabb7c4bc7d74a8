/** WordPress's config file and SQL, as data (the real stack is in stack.test.ts). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { generateSalts, SALT_NAMES, wordpressConfigPhp, wordpressFirstUserSql, wordpressSetPasswordSql } from '../src/index.ts';

const config = suite("WordPress's config file");
const base = { siteUrl: 'https://www.shop.example', db: { host: '198.18.1.2', port: 3306, name: 'app', user: 'app', password: 'pw' } };
const defined = (php: string, name: string) => new RegExp(`define\\('${name}', '([^']*)'\\);`).exec(php)?.[1];

config('given salts are written as they are: every webserver given the same ones writes the same keys', () => {
  const salts = generateSalts();
  const a = wordpressConfigPhp({ ...base, salts });
  const b = wordpressConfigPhp({ ...base, db: { ...base.db, host: '198.18.1.9' }, salts });
  for (const n of SALT_NAMES) {
    assert.is(defined(a, n), salts[n], n);
    assert.is(defined(b, n), salts[n], n);
  }
});

config('without salts, each config gets fresh random ones (one server alone)', () => {
  const [a, b] = [wordpressConfigPhp(base), wordpressConfigPhp(base)];
  for (const n of SALT_NAMES) {
    assert.ok((defined(a, n) ?? '').length >= 32, n);
    assert.is.not(defined(a, n), defined(b, n), n);
  }
});

config('salts that are missing, short or not printable are refused (exit 2), never quoted back', () => {
  const good = generateSalts();
  const { NONCE_SALT: _, ...missing } = good;
  for (const bad of [missing, { ...good, AUTH_KEY: 'short' }, { ...good, LOGGED_IN_SALT: `${'x'.repeat(40)}\n` }]) {
    const e = throws(() => wordpressConfigPhp({ ...base, salts: bad }), { code: 'BAD_SALTS', exitCode: 2 });
    for (const v of Object.values(good)) assert.not.ok(e.message.includes(v));
  }
});

const sql = suite('WordPress administrator SQL');

sql("the first user is the install's administrator: the lowest ID", () => {
  assert.is(wordpressFirstUserSql(), 'SELECT user_login FROM wp_users ORDER BY ID LIMIT 1;');
  assert.is(wordpressFirstUserSql('shop_'), 'SELECT user_login FROM shop_users ORDER BY ID LIMIT 1;');
});

sql("a new password is stored as MD5 of the quoted password, for that user's login only", () => {
  assert.is(
    wordpressSetPasswordSql('admin', 's3cret-Pass_word'),
    "UPDATE wp_users SET user_pass = MD5('s3cret-Pass_word') WHERE user_login = 'admin';",
  );
  assert.is(wordpressSetPasswordSql('admin', 'x', 'shop_'), "UPDATE shop_users SET user_pass = MD5('x') WHERE user_login = 'admin';");
});

sql('quotes and backslashes in the login or the password stay inside their strings', () => {
  const text = wordpressSetPasswordSql("o'brien", "it's\\'; DROP TABLE wp_users; --");
  assert.is(text, "UPDATE wp_users SET user_pass = MD5('it\\'s\\\\\\'; DROP TABLE wp_users; --') WHERE user_login = 'o\\'brien';");
});

sql('a table prefix that is not letters, digits and _ is refused (exit 2)', () => {
  for (const bad of ['', 'wp-', 'wp_; DROP TABLE x; --', 'a'.repeat(21)]) {
    for (const f of [() => wordpressFirstUserSql(bad), () => wordpressSetPasswordSql('admin', 'x', bad)]) {
      throws(f, { code: 'BAD_PREFIX', exitCode: 2 }, bad);
    }
  }
});

config.run();
sql.run();
