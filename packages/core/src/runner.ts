/**
 * Keep "what to run" apart from "running it": builders return argv arrays, a Runner executes
 * them. The execa runner never goes through a shell, so no value is ever shell-interpreted.
 */
import { execa } from 'execa';
import { lastLines } from './text.ts';

export type Argv = readonly [string, ...string[]];

export interface RunOptions {
  /** Written to the process's stdin (e.g. an `iptables-restore` rule file). */
  input?: string;
  /** Kill the process after this many ms (default 30 000). */
  timeoutMs?: number;
  /** Extra environment variables (merged over the current environment). */
  env?: Record<string, string>;
  /** Return the result instead of throwing when the exit code is not 0. */
  nothrow?: boolean;
  cwd?: string;
}

export interface RunResult {
  argv: Argv;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface Runner {
  run(argv: Argv, options?: RunOptions): Promise<RunResult>;
}

export class CommandError extends Error {
  readonly result: RunResult;
  constructor(result: RunResult) {
    const detail = lastLines(result.stderr) || `exit code ${result.exitCode}`;
    super(`command failed: ${result.argv.join(' ')}: ${detail}`);
    this.name = 'CommandError';
    this.result = result;
  }
}

/** The real runner, over execa's array form. https://github.com/sindresorhus/execa/blob/main/docs/execution.md */
export function execaRunner(defaults: { timeoutMs?: number } = {}): Runner {
  return {
    async run(argv, options = {}) {
      const [file, ...args] = argv;
      const child = await execa(file, args, {
        input: options.input,
        timeout: options.timeoutMs ?? defaults.timeoutMs ?? 30_000,
        env: options.env,
        cwd: options.cwd,
        reject: false,
        stripFinalNewline: false,
      });
      const result: RunResult = {
        argv,
        exitCode: child.exitCode ?? (child.timedOut ? 124 : 1),
        stdout: String(child.stdout ?? ''),
        stderr: child.timedOut ? `timed out after ${options.timeoutMs ?? defaults.timeoutMs ?? 30_000} ms` : String(child.stderr ?? ''),
      };
      if (result.exitCode !== 0 && !options.nothrow) throw new CommandError(result);
      return result;
    },
  };
}

/** A runner that records argv and answers from a table: for unit tests of builders and dry runs. */
export function recordingRunner(
  answer: (argv: Argv) => Partial<RunResult> = () => ({}),
): Runner & { calls: { argv: Argv; input?: string }[] } {
  const calls: { argv: Argv; input?: string }[] = [];
  return {
    calls,
    async run(argv, options = {}) {
      calls.push({ argv, input: options.input });
      const r = { argv, exitCode: 0, stdout: '', stderr: '', ...answer(argv) };
      if (r.exitCode !== 0 && !options.nothrow) throw new CommandError(r);
      return r;
    },
  };
}
