import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseScalingSchedule, scalingCronFile } from '../src/index.ts';

const parse = suite('parseScalingSchedule');

parse('HH:MM=N items separated by ";" become a total per time of day', () => {
  assert.equal(parseScalingSchedule('08:30=10; 17:30=3', 10), { '08:30': 10, '17:30': 3 });
  assert.equal(parseScalingSchedule(' 00:00 = 0 ;;23:59=1; ', 10), { '00:00': 0, '23:59': 1 });
});

parse('an empty schedule is no scheduled scaling', () => {
  assert.equal(parseScalingSchedule('', 10), {});
  assert.equal(parseScalingSchedule(' ; ', 10), {});
});

parse('a bad time, a bad count or a count above the maximum names the item and what is allowed', () => {
  for (const item of ['25:00=3', '8:30=3', '08:60=3', '08:30', '08:30=x', '08:30=-1', '08:30=11', '08:30=1.5'])
    assert.throws(
      () => parseScalingSchedule(`07:00=1;${item}`, 10),
      (e: Error) => e instanceof RangeError && e.message === `"${item}": HH:MM=<webservers>, 00:00-23:59, 0 to 10`,
      item,
    );
});

// ---

const cron = suite('scalingCronFile');

cron('one line per time, running ManuallyScale.ts with the total as root at that minute, logged', () => {
  const text = scalingCronFile({ '08:30': 10, '17:05': 3 });
  assert.is(
    text,
    [
      '# Written by the Agile Deployment Toolkit: scheduled scaling (SCALING_SCHEDULE).',
      'SHELL=/bin/sh',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '30 8 * * * root /opt/adt/roles/autoscaler/ManuallyScale.ts 10 >> /var/log/adt/scaling.log 2>&1',
      '5 17 * * * root /opt/adt/roles/autoscaler/ManuallyScale.ts 3 >> /var/log/adt/scaling.log 2>&1',
      '',
    ].join('\n'),
  );
});

cron('the code directory is where the roles are', () => {
  assert.match(scalingCronFile({ '00:00': 0 }, '/srv/adt'), '0 0 * * * root /srv/adt/roles/autoscaler/ManuallyScale.ts 0 >>');
});

cron('what parseScalingSchedule gives is what the file is made from', () => {
  const lines = scalingCronFile(parseScalingSchedule('08:30=10;17:30=3', 10))
    .trim()
    .split('\n')
    .filter((l) => /^\d/.test(l));
  assert.equal(
    lines.map((l) => l.split(' root ')[0]),
    ['30 8 * * *', '30 17 * * *'],
  );
});

cron('a time that is not HH:MM or a count that is not a whole number >= 0 is refused', () => {
  for (const [time, n] of [
    ['8:30', 1],
    ['24:00', 1],
    ['08:30', -1],
    ['08:30', 1.5],
  ] as const)
    assert.throws(
      () => scalingCronFile({ [time]: n }),
      (e: Error) => e instanceof RangeError && e.message === `scaling schedule "${time}=${n}"`,
    );
});

parse.run();
cron.run();
