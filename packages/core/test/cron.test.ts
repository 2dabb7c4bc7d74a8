import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isAdtError, parseCronExpression, validateCronExpression } from '../src/index.ts';

const valid = suite('cron expressions cron accepts');

valid('the default backup schedule is valid', () => {
  for (const expr of ['17 * * * *', '30 3 * * *', '45 3 * * 0', '0 4 1 * *', '15 4 1 */2 *'])
    assert.is(validateCronExpression(expr), null, expr);
});

valid('every form of a field: *, a number, a range, a list, a step after * or a range', () => {
  for (const expr of [
    '* * * * *',
    '0 0 1 1 0',
    '59 23 31 12 7',
    '0-30 * * * *',
    '0,15,30,45 * * * *',
    '*/5 * * * *',
    '0-30/10 8-18/2 * * 1-5',
  ])
    assert.is(validateCronExpression(expr), null, expr);
});

valid('spaces and tabs between fields, around the expression', () => {
  assert.is(validateCronExpression('  30\t3  * *  * '), null);
  assert.is(parseCronExpression('  30\t3  * *  * ').text, '30 3 * * *');
});

valid('parsing gives the values each field matches', () => {
  const c = parseCronExpression('0-30/10 8,12-13 1 */3 1-5');
  assert.equal(c.minute, [0, 10, 20, 30]);
  assert.equal(c.hour, [8, 12, 13]);
  assert.equal(c.dayOfMonth, [1]);
  assert.equal(c.month, [1, 4, 7, 10]);
  assert.equal(c.dayOfWeek, [1, 2, 3, 4, 5]);
});

valid('day of week 7 is Sunday, as 0 is', () => {
  assert.equal(parseCronExpression('0 0 * * 7').dayOfWeek, [0]);
  assert.equal(parseCronExpression('0 0 * * 0,7').dayOfWeek, [0]);
  assert.equal(parseCronExpression('0 0 * * 5-7').dayOfWeek, [0, 5, 6]);
});

// ---

const invalid = suite('cron expressions cron would refuse');

const problem = (expr: string) => {
  const p = validateCronExpression(expr);
  assert.type(p, 'string', expr);
  return p!;
};

invalid('not 5 fields', () => {
  assert.match(problem(''), '5 fields are needed');
  assert.match(problem('30 3 * *'), '4 given');
  assert.match(problem('0 30 3 * * *'), '6 given');
});

invalid('a number outside its field names the field and its range', () => {
  assert.match(problem('99 * * * *'), 'minute "99": 99 is outside 0-59');
  assert.match(problem('0 24 * * *'), 'hour "24": 24 is outside 0-23');
  assert.match(problem('0 0 0 * *'), 'day of month "0": 0 is outside 1-31');
  assert.match(problem('0 0 32 * *'), 'day of month "32": 32 is outside 1-31');
  assert.match(problem('0 0 * 13 *'), 'month "13": 13 is outside 1-12');
  assert.match(problem('0 0 * 0 *'), 'month "0": 0 is outside 1-12');
  assert.match(problem('0 0 * * 8'), 'day of week "8": 8 is outside 0-7');
  assert.match(problem('0,60 * * * *'), 'minute "0,60": 60 is outside 0-59');
  assert.match(problem('0 20-25 * * *'), 'hour "20-25": 25 is outside 0-23');
});

invalid('a range that goes down', () => {
  assert.match(problem('0 18-8 * * *'), 'hour "18-8": the range 18-8 goes down');
});

invalid('a step of 0, or larger than the field', () => {
  assert.match(problem('*/0 * * * *'), 'minute "*/0": the step 0 is outside 1-59');
  assert.match(problem('*/60 * * * *'), 'minute "*/60": the step 60 is outside 1-59');
  assert.match(problem('0 0 * */13 *'), 'month "*/13": the step 13 is outside 1-12');
  assert.match(problem('0 0 * * 1-5/0'), 'day of week "1-5/0"');
});

invalid('a step after a single number', () => {
  assert.match(problem('5/10 * * * *'), 'minute "5/10": a step needs * or a range before it');
});

invalid('names, macros, empty items, signs and other characters', () => {
  for (const [expr, field] of [
    ['0 0 * * mon', 'day of week'],
    ['0 0 * jan *', 'month'],
    ['@daily * * * *', 'minute'],
    ['0,,5 * * * *', 'minute'],
    ['0, * * * *', 'minute'],
    ['-1 * * * *', 'minute'],
    ['1- * * * *', 'minute'],
    ['*/ * * * *', 'minute'],
    ['** * * * *', 'minute'],
    ['0 3 * * 1;', 'day of week'],
    ['0 0 ? * *', 'day of month'],
    ['1.5 * * * *', 'minute'],
  ] as const)
    assert.match(problem(expr), `${field} "`, expr);
  assert.match(problem('@daily'), '5 fields are needed');
});

invalid('parseCronExpression throws an AdtError (BAD_CRON, exit 2) with the same message', () => {
  // (@adt/test-utils' `throws` depends on this package: uvu's own assert.throws, with a predicate.)
  assert.throws(
    () => parseCronExpression('0 24 * * *'),
    (e: unknown) => isAdtError(e) && e.code === 'BAD_CRON' && e.exitCode === 2 && e.message.includes('hour "24": 24 is outside 0-23'),
  );
});

valid.run();
invalid.run();
