/** WordPress's config file and SQL, as data (the real stack is in stack.test.ts). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { wordpressFirstUserSql, wordpressSetPasswordSql } from '../src/index.ts';

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

sql.run();
