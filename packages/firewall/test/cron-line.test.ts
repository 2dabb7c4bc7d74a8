import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cronLine } from '../src/index.ts';

const cron = suite('cronLine');

cron('runs the command every minute as root, its output appended to the given log', () => {
  assert.is(
    cronLine('/opt/adt/roles/database/security/SetupFirewall', { logFile: '/var/log/adt/firewall.log' }),
    '* * * * * root /opt/adt/roles/database/security/SetupFirewall >> /var/log/adt/firewall.log 2>&1',
  );
});

cron("another job's output goes to its own log, not the firewall's", () => {
  const line = cronLine('/opt/adt/roles/webserver/tls/SyncCertificate', { logFile: '/var/log/adt/certificate.log' });
  assert.is(line, '* * * * * root /opt/adt/roles/webserver/tls/SyncCertificate >> /var/log/adt/certificate.log 2>&1');
  assert.not.match(line, 'firewall.log');
});

cron('runs every N minutes when asked', () => {
  assert.is(
    cronLine('/usr/local/bin/job', { logFile: '/var/log/job.log', minutes: 5 }),
    '*/5 * * * * root /usr/local/bin/job >> /var/log/job.log 2>&1',
  );
});

cron('refuses minutes outside 1-59', () => {
  for (const minutes of [0, 60, 1.5, -1])
    assert.throws(() => cronLine('/usr/local/bin/job', { logFile: '/var/log/job.log', minutes }), /minutes: 1-59/);
});

cron('refuses a relative or shell-unsafe command or log file', () => {
  assert.throws(() => cronLine('job', { logFile: '/var/log/job.log' }), /command "job"/);
  assert.throws(() => cronLine('/usr/local/bin/job; rm -rf /', { logFile: '/var/log/job.log' }), /command/);
  assert.throws(() => cronLine('/usr/local/bin/job', { logFile: 'job.log' }), /log file "job.log"/);
  assert.throws(() => cronLine('/usr/local/bin/job', { logFile: '/var/log/job.log 2>&1; rm -rf /' }), /log file/);
});

cron.run();
