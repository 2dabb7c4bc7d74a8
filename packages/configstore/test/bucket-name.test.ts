import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { backupBucketName, configBucketName, validateBuildId, siteHost } from '../src/index.ts';

const naming = suite('configBucketName');

naming('is the site with hyphens, "config" and the build identifier', () => {
  assert.is(configBucketName('www.example.com', 'prod1'), 'www-example-com-config-prod1');
  assert.is(configBucketName('https://Shop.Example.org/', 'dev'), 'shop-example-org-config-dev');
});

naming('the backup bucket belongs to the site (every build of it), shortened the same way', () => {
  assert.is(backupBucketName('www.example.com'), 'www-example-com-backups');
  const long = backupBucketName(`${'a'.repeat(60)}.example.com`);
  assert.ok(long.length <= 63 && long.endsWith('-backups'), long);
  assert.is.not(long, backupBucketName(`${'a'.repeat(60)}.example.net`));
});

naming('shortens long site names with a hash, staying valid and distinct', () => {
  const a = configBucketName(`${'a'.repeat(60)}.example.com`, 'build1');
  const b = configBucketName(`${'a'.repeat(60)}.example.net`, 'build1');
  for (const n of [a, b]) {
    assert.ok(n.length <= 63, n);
    assert.match(n, /^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
    assert.ok(n.endsWith('-config-build1'));
  }
  assert.is.not(a, b);
});

naming('refuses bad site URLs and build identifiers with exit code 2, naming the value', () => {
  for (const [site, build] of [
    ['', 'b1'],
    ['not a host', 'b1'],
    ['198.18.0.1', 'b1'],
    ['localhost', 'b1'],
    ['ex_ample.com', 'b1'],
    ['www.example.com', ''],
    ['www.example.com', 'Prod'],
    ['www.example.com', 'prod-1'],
    ['www.example.com', 'x'.repeat(25)],
  ]) {
    throws(
      () => configBucketName(site!, build!),
      { code: 'INVALID_BUCKET_NAME', exitCode: 2, message: /site URL|build identifier/ },
      `${site} ${build}`,
    );
  }
});

naming('siteHost and validateBuildId accept the documented forms', () => {
  assert.is(siteHost('http://www.example.com:8443/path'), 'www.example.com');
  assert.is(validateBuildId('a'), 'a');
  assert.is(validateBuildId('prod2026'), 'prod2026');
});

naming.run();
