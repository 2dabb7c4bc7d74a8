/**
 * One command layer for every program of the roles (after citty's `defineCommand` and lazily
 * loaded `subCommands`): a command declares its options, positional arguments, help and whether it
 * needs root; `runCommand` parses the arguments strictly (an unknown option or a missing argument
 * is a usage error: exit 2, with the usage), answers `--help`, checks root, and maps errors to exit
 * codes (`runMain`). A program is a table of commands, each loaded only when it is called.
 *
 *   export default defineCommand({
 *     name: 'AdjustScaling',
 *     usage: '[--config FILE] <webservers>',
 *     description: 'Sets the desired number of webservers...',
 *     common: ['config', 'json'],
 *     positionals: { min: 1, max: 1 },
 *     root: true,
 *     async run({ values, positionals, out }) { ... },
 *   });
 */
import { parseArgs } from 'node:util';
import { AdtError } from '@adt/core';
import { runMain, usage } from './main.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** One line for the help. */
  description: string;
  /** `--name VALUE` may be given several times (string options). */
  multiple?: boolean;
}

/** Options most commands of the build machine share. */
export const COMMON_OPTIONS = {
  config: { type: 'string', description: 'the deployment file (dotenv); see roles/build/deployment.example.env' },
  json: { type: 'boolean', description: 'machine-readable output on stdout (progress goes to stderr)' },
} as const satisfies Record<string, OptionSpec>;

type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : O[K]['multiple'] extends true ? string[] : string;
};

/** Where a command writes: lines for people, and one result for scripts (--json). */
export interface Output {
  /** A line of progress or result for a person (stderr with --json, so stdout stays JSON). */
  say(line: string): void;
  /** The result: JSON on stdout with --json, else `text` (when given) for a person. */
  result(value: unknown, text?: string): void;
  json: boolean;
}

export interface CommandContext<O extends Record<string, OptionSpec>> {
  values: Values<O> & { config?: string; json?: boolean };
  positionals: string[];
  /** Arguments after `--` (commands that run another command: ExecuteOn<Role>). */
  rest: string[];
  out: Output;
}

export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  /** The name a person types, e.g. `ExecuteOnWebserver`. */
  name: string;
  /** What follows the name in the usage line, e.g. `[--config FILE] -- COMMAND [ARG...]`. */
  usage: string;
  /** What it does, a short paragraph. */
  description: string;
  options?: O;
  /** Which of COMMON_OPTIONS it takes. */
  common?: (keyof typeof COMMON_OPTIONS)[];
  /** Positional arguments allowed (default none). */
  positionals?: { min: number; max: number };
  /** Takes `-- ARG...` (the rest is passed as `rest`). */
  rest?: { required: boolean };
  /** Needs root (the local cloud makes namespaces; servers' commands change the host). */
  root?: boolean;
  run(ctx: CommandContext<O>): Promise<number | void>;
}

export interface Command {
  readonly spec: CommandSpec;
  /** The help text: usage line, description, options. */
  help(): string;
}

export function defineCommand<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): Command {
  const s = spec as unknown as CommandSpec;
  return {
    spec: s,
    help() {
      const options = { ...pick(s.common ?? []), ...(s.options ?? {}) } as Record<string, OptionSpec>;
      const lines = [`usage: ${s.name} ${s.usage}`.trimEnd(), '', s.description];
      const entries = Object.entries(options);
      if (entries.length) {
        lines.push('');
        const width = Math.max(...entries.map(([k, o]) => k.length + (o.type === 'string' ? 6 : 0))) + 4;
        for (const [k, o] of entries) lines.push(`  ${`--${k}${o.type === 'string' ? ' VALUE' : ''}`.padEnd(width)}${o.description}`);
      }
      return lines.join('\n');
    },
  };
}

function pick(names: (keyof typeof COMMON_OPTIONS)[]): Record<string, OptionSpec> {
  return Object.fromEntries(names.map((n) => [n, COMMON_OPTIONS[n]]));
}

function output(json: boolean): Output {
  return {
    json,
    say: (line) => void (json ? process.stderr : process.stdout).write(`${line}\n`),
    result(value, text) {
      if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else if (text !== undefined) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
  };
}

/** Parses `argv` for `command` and runs it; returns its exit code (errors propagate, for runMain). */
export async function runCommand(command: Command, argv: string[]): Promise<number> {
  const s = command.spec;
  const dash = argv.indexOf('--');
  const own = s.rest && dash >= 0 ? argv.slice(0, dash) : argv;
  const rest = s.rest && dash >= 0 ? argv.slice(dash + 1) : [];
  const options = { ...pick(s.common ?? []), ...(s.options ?? {}), help: { type: 'boolean', description: 'this help' } } as Record<
    string,
    OptionSpec
  >;
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: own,
      options: Object.fromEntries(
        Object.entries(options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}) }]),
      ),
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw usage(`${s.name}: ${(e as Error).message}\n\n${command.help()}`);
  }
  if (parsed.values.help) {
    process.stdout.write(`${command.help()}\n`);
    return 0;
  }
  const p = s.positionals ?? { min: 0, max: 0 };
  if (parsed.positionals.length < p.min || parsed.positionals.length > p.max) {
    const expected = p.min === p.max ? `${p.min}` : `${p.min} to ${p.max}`;
    throw usage(`${s.name}: expected ${expected} argument(s), got ${parsed.positionals.length}\n\n${command.help()}`);
  }
  if (s.rest?.required && !rest.length) throw usage(`${s.name}: give the command after --\n\n${command.help()}`);
  if (s.root && process.getuid?.() !== 0) {
    throw new AdtError(
      'NOT_ROOT',
      `${s.name} needs root (the local cloud makes network namespaces; servers' commands change the host): run it as root`,
      {
        pkg: 'roles',
        exitCode: 2,
      },
    );
  }
  const code = await s.run({
    values: parsed.values as CommandContext<Record<string, OptionSpec>>['values'],
    positionals: parsed.positionals,
    rest,
    out: output(Boolean(parsed.values.json)),
  });
  return code ?? 0;
}

/**
 * A command that parses its own arguments (the original's config wrapper commands, whose
 * arguments are not options): it gets them as they are.
 */
export interface RawCommand {
  raw(argv: string[]): Promise<number | void>;
}

/** A program's commands, each loaded when called: name -> () => import(...). */
export type CommandTable = Record<string, () => Promise<Command | RawCommand>>;

/**
 * The entry of a program made of commands: runs `table[name]` with `argv`, with the one top-level
 * catch (`runMain`). An unknown name is a usage error listing the commands.
 */
export function runProgram(program: string, table: CommandTable, name: string | undefined, argv: string[]): Promise<never> {
  return runMain(async () => {
    const load = name ? table[name] : undefined;
    if (!load) throw usage(`${program}: unknown command "${name ?? ''}": one of ${Object.keys(table).join(', ')}`);
    const command = await load();
    if (!('raw' in command)) return runCommand(command, argv);
    try {
      return (await command.raw(argv)) ?? 0;
    } catch (e) {
      // node:util parseArgs in a command's own parsing: an unknown option or a missing value is bad input.
      if (String((e as { code?: string }).code).startsWith('ERR_PARSE_ARGS')) throw usage(`${name}: ${(e as Error).message}`);
      throw e;
    }
  });
}
