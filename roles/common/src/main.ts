/**
 * The one top-level catch of every role program (known errors exit with their code, unknown ones
 * print the stack and exit 1), its usage errors, and the line format of its logs.
 */
import { AdtError, isAdtError } from '@adt/core';

/** One line of a service's log on stdout, after the time (ISO 8601, UTC). */
export function logLine(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

export async function runMain(fn: () => Promise<number | void>): Promise<never> {
  try {
    const code = await fn();
    process.exit(code ?? 0);
  } catch (e) {
    if (isAdtError(e)) {
      process.stderr.write(`${e.message}\n`);
      process.exit(e.exitCode);
    }
    process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  }
}

/** A usage error: exit 2 with the message (and usage text). */
export function usage(message: string): AdtError {
  return new AdtError('USAGE', message, { pkg: 'roles', exitCode: 2 });
}

/** The period of a loop command's `--every SECONDS` (from 5 to `maxSeconds`), or null when not given (run once). */
export function everySeconds(value: string | undefined, maxSeconds: number): number | null {
  if (value === undefined) return null;
  const every = Number(value);
  if (!Number.isInteger(every) || every < 5 || every > maxSeconds) throw usage(`--every ${value}: 5-${maxSeconds} seconds`);
  return every;
}
