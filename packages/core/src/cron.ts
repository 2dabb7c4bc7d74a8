/**
 * Cron expressions as Debian's cron (Vixie cron) reads the time of an /etc/cron.d line: five fields,
 * minute hour day-of-month month day-of-week, each a list (commas) of `*`, a number or a range
 * `a-b`, where `*` and a range may take a `/step`. Names (`mon`, `jan`) and `@daily`-style macros
 * are refused. Checked here before a line is written because cron skips a whole file with one bad
 * line, silently: every job of the file stops.
 */
import { AdtError } from './errors.ts';

/**
 * The lines every /etc/cron.d file of the toolkit starts with. cron runs a job with PATH=/usr/bin:/bin,
 * without the sbin directories where nginx, apachectl and iptables are: a job that starts them
 * fails there although it works from a shell.
 */
export const CRON_ENVIRONMENT: readonly string[] = ['SHELL=/bin/sh', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

/** One field of a cron expression and the values it allows. */
export interface CronField {
  name: 'minute' | 'hour' | 'day of month' | 'month' | 'day of week';
  min: number;
  max: number;
}

/** The five fields, in order; in the day of week both 0 and 7 are Sunday. */
export const CRON_FIELDS: readonly CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
];

/** A parsed expression: the values each field matches, ascending, without repeats. */
export interface CronExpression {
  minute: number[];
  hour: number[];
  dayOfMonth: number[];
  month: number[];
  /** 0-6 (7, Sunday, is given as 0). */
  dayOfWeek: number[];
  /** The expression with its fields separated by one space. */
  text: string;
}

/** Parses a 5-field cron expression; throws an AdtError (code BAD_CRON, exit 2) naming the bad field and its range. */
export function parseCronExpression(expr: string): CronExpression {
  const r = check(expr);
  if (typeof r === 'string') throw new AdtError('BAD_CRON', r, { pkg: 'core', driver: 'cron', exitCode: 2 });
  return r;
}

/** Null when `expr` is a valid 5-field cron expression, else what is wrong (the field and its allowed range). */
export function validateCronExpression(expr: string): string | null {
  const r = check(expr);
  return typeof r === 'string' ? r : null;
}

// --- Internal helpers ---

const ITEM = /^(?:(\*)|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/;

function check(expr: string): CronExpression | string {
  const fields = expr.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 5) return `"${expr}": 5 fields are needed (minute hour day-of-month month day-of-week), ${fields.length} given`;
  const values: number[][] = [];
  for (const [i, f] of CRON_FIELDS.entries()) {
    const v = checkField(fields[i]!, f);
    if (typeof v === 'string') return v;
    values.push(v);
  }
  const [minute, hour, dayOfMonth, month, dayOfWeek] = values as [number[], number[], number[], number[], number[]];
  const sunday = [...new Set(dayOfWeek.map((d) => (d === 7 ? 0 : d)))].sort((a, b) => a - b);
  return { minute, hour, dayOfMonth, month, dayOfWeek: sunday, text: fields.join(' ') };
}

function checkField(text: string, f: CronField): number[] | string {
  const range = `${f.min}-${f.max}`;
  const out = new Set<number>();
  for (const item of text.split(',')) {
    const m = ITEM.exec(item);
    if (!m) return `${f.name} "${text}": each item is *, a number or a range a-b (* and a range may end in /step), within ${range}`;
    const [, star, first, last, step] = m;
    let lo = f.min;
    let hi = f.max;
    if (!star) {
      lo = Number(first);
      hi = last === undefined ? lo : Number(last);
      for (const n of [lo, hi]) if (n < f.min || n > f.max) return `${f.name} "${text}": ${n} is outside ${range}`;
      if (lo > hi) return `${f.name} "${text}": the range ${lo}-${hi} goes down (a-b needs a <= b), within ${range}`;
      // Debian's cron reads "5/10" as 5 followed by garbage: a step needs * or a range before it.
      if (step !== undefined && last === undefined)
        return `${f.name} "${text}": a step needs * or a range before it (*/${step} or ${lo}-${f.max}/${step}), within ${range}`;
    }
    const by = step === undefined ? 1 : Number(step);
    if (by < 1 || by > f.max) return `${f.name} "${text}": the step ${step} is outside 1-${f.max}`;
    for (let n = lo; n <= hi; n += by) out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}
