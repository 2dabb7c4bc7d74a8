/** Command-line parsing of the build's commands: unknown options and stray arguments are usage errors (exit 2). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usage } from '@adt/role-common';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandLine<O extends Options>(args: string[], options: O, help: string, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (e) {
    throw usage(`${(e as Error).message}\n\n${help}`);
  }
}

/** The arguments after the launcher script (zx and node put their own first). */
export function scriptArgs(script: string, argv: string[] = process.argv): string[] {
  const i = argv.findIndex((a) => a.endsWith(script));
  return argv.slice(i + 1);
}
