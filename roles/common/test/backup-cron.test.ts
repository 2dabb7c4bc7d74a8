/** The schedule of the roles' backups, as the cron.d file the bootstraps write. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { backupCronFile } from '../src/backup.ts';

const test = suite('backup schedule (cron.d)');

test("one line per scheduled period, running the role's Backup command as root, logged", () => {
  const text = backupCronFile('database', { schedule: { daily: '30 3 * * *', bimonthly: '15 4 1 */2 *' } });
  const lines = text.trim().split('\n');
  assert.is(lines[1], 'SHELL=/bin/sh');
  assert.ok(lines.includes('30 3 * * * root /opt/adt/roles/database/backup/Backup daily >> /var/log/adt/backup.log 2>&1'));
  assert.ok(lines.includes('15 4 1 */2 * root /opt/adt/roles/database/backup/Backup bimonthly >> /var/log/adt/backup.log 2>&1'));
  assert.ok(text.endsWith('\n'), 'cron needs the last line ended');
});

test('a schedule that is not 5 cron fields, or an unknown period, is refused (exit 2)', () => {
  for (const schedule of [{ daily: '30 3 * *' }, { daily: '30 3 * * * ; rm -rf /' }, { yearly: '0 0 1 1 *' }] as Record<string, string>[]) {
    throws(() => backupCronFile('webserver', { schedule }), { exitCode: 2 }, JSON.stringify(schedule));
  }
});

test.run();
