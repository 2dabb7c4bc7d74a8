/**
 * The config wrapper commands, with the original's names, one implementation for every role.
 * Each role has `providerscripts/datastore/configwrapper/<Name>`: links to one dispatcher that runs
 * this file with its own name.
 *
 *   PutToConfigDatastore <key> [<value> | -]     value: JSON, or text; none: an empty marker; -: read stdin
 *   GetFromConfigDatastore <key>                  prints the value (text as is, other JSON as JSON); exit 1 if absent
 *   ListFromConfigDatastore <prefix>[*] [--full]  one line per key: its last path segment (--full: the whole key)
 *   DeleteFromConfigDatastore <key> | <prefix>*   deletes a key, or every key under a prefix
 *   CheckConfigDatastore <key>                    exit 0 if the key exists, 1 if not
 *   GetDBCredential <field> [--reveal]            one field of the database credentials: engine|host|port|name|user|password
 *
 * Secret keys (credentials/, secrets/) are written only from stdin (never a command-line value, which
 * other users can see in `ps`), are never printed by GetFromConfigDatastore, and GetDBCredential
 * writes the password to a terminal only with --reveal (it is meant for `$(...)` in scripts).
 */
import { readFileSync } from 'node:fs';
import { isSecretKey, keys, validateKey, type ConfigStore, type DbCredentials, type JsonValue } from '@adt/configstore';
import { openDatastore } from './datastore.ts';
import { usage } from './main.ts';
import type { RawCommand } from './command.ts';

export const COMMANDS = [
  'PutToConfigDatastore',
  'GetFromConfigDatastore',
  'ListFromConfigDatastore',
  'DeleteFromConfigDatastore',
  'CheckConfigDatastore',
  'GetDBCredential',
] as const;
export type Command = (typeof COMMANDS)[number];

const USAGE: Record<Command, string> = {
  PutToConfigDatastore: 'usage: PutToConfigDatastore <key> [<value> | -]   (no value: an empty marker; -: the value from stdin)',
  GetFromConfigDatastore: 'usage: GetFromConfigDatastore <key>',
  ListFromConfigDatastore: 'usage: ListFromConfigDatastore <prefix>[*] [--full]',
  DeleteFromConfigDatastore: 'usage: DeleteFromConfigDatastore <key> | <prefix>*',
  CheckConfigDatastore: 'usage: CheckConfigDatastore <key>',
  GetDBCredential: 'usage: GetDBCredential engine|host|port|name|user|password [--reveal]',
};

const DB_FIELDS = ['engine', 'host', 'port', 'name', 'user', 'password'] as const;

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  stdin: () => string;
  isTTY: boolean;
}

/** Runs one command; returns its exit code. Arguments are checked before the datastore is opened. */
export async function configWrapper(command: string, args: string[], open: () => ConfigStore, io: Io): Promise<number> {
  if (!(COMMANDS as readonly string[]).includes(command)) throw usage(`unknown command "${command}": use one of ${COMMANDS.join(', ')}`);
  const cmd = command as Command;
  const flags = args.filter((a) => a.startsWith('--'));
  const positional = args.filter((a) => !a.startsWith('--'));
  const allowedFlags = cmd === 'ListFromConfigDatastore' ? ['--full'] : cmd === 'GetDBCredential' ? ['--reveal'] : [];
  const unknown = flags.filter((f) => !allowedFlags.includes(f));
  const maxArgs = cmd === 'PutToConfigDatastore' ? 2 : 1;
  if (unknown.length) throw usage(`${cmd}: unknown option ${unknown.join(' ')}\n${USAGE[cmd]}`);
  if (positional.length < 1 || positional.length > maxArgs)
    throw usage(`${cmd}: expected ${maxArgs === 2 ? '1 or 2 arguments' : '1 argument'}, got ${positional.length}\n${USAGE[cmd]}`);
  const [first, second] = positional as [string, string | undefined];

  switch (cmd) {
    case 'PutToConfigDatastore': {
      validateKey(first);
      if (isSecretKey(first) && second !== '-')
        throw usage(`${cmd}: "${first}" is a secret key: pass its value on stdin with "-", never on the command line`);
      const text = second === '-' ? io.stdin() : second;
      await open().put(first, text === undefined ? undefined : parseValue(text.replace(/\n$/, '')));
      return 0;
    }
    case 'GetFromConfigDatastore': {
      validateKey(first);
      if (isSecretKey(first)) {
        const hint = first === keys.dbCredentials.path ? ': use GetDBCredential <field> in scripts' : '';
        throw usage(`${cmd}: "${first}" is a secret and is not printed${hint}`);
      }
      const value = await open().get(first);
      if (value === null) {
        io.stderr(`${first}: not in the datastore\n`);
        return 1;
      }
      io.stdout(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
      return 0;
    }
    case 'ListFromConfigDatastore': {
      // The original strips everything from the first "*": accept "webserverips/*" too.
      const prefix = first.includes('*') ? first.slice(0, first.indexOf('*')) : first;
      const found = await open().list(prefix);
      const full = flags.includes('--full');
      for (const k of found) io.stdout(`${full ? k : k.slice(k.lastIndexOf('/') + 1)}\n`);
      return 0;
    }
    case 'DeleteFromConfigDatastore': {
      if (first.endsWith('*')) {
        const prefix = first.slice(0, -1);
        if (prefix === '' || prefix.includes('*'))
          throw usage(`${cmd}: "${first}": a prefix delete needs a non-empty prefix before a single trailing "*"`);
        const n = await open().deletePrefix(prefix);
        io.stderr(`deleted ${n} key(s) under ${prefix}\n`);
        return 0;
      }
      validateKey(first);
      await open().delete(first);
      return 0;
    }
    case 'CheckConfigDatastore': {
      validateKey(first);
      return (await open().exists(first)) ? 0 : 1;
    }
    case 'GetDBCredential': {
      const field = first as (typeof DB_FIELDS)[number];
      if (!DB_FIELDS.includes(field)) throw usage(`${cmd}: unknown field "${first}": use one of ${DB_FIELDS.join(', ')}\n${USAGE[cmd]}`);
      if (field === 'password' && io.isTTY && !flags.includes('--reveal')) {
        throw usage(
          `${cmd}: refusing to print the password to a terminal: capture it in a script ($(GetDBCredential password)) or add --reveal`,
        );
      }
      const creds = await open().get<DbCredentials>(keys.dbCredentials);
      if (!creds) {
        io.stderr(`${keys.dbCredentials.path}: not in the datastore (is the build finished?)\n`);
        return 1;
      }
      const value = creds[field];
      if (value === undefined) {
        io.stderr(`${keys.dbCredentials.path}: has no ${field}\n`);
        return 1;
      }
      io.stdout(`${value}\n`);
      return 0;
    }
  }
}

/** JSON when it parses (numbers, objects, quoted strings, true...), otherwise the text itself. */
function parseValue(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

/** The command `name` of the programs (it parses its own arguments, as the original's did). */
export function configWrapperCommand(name: Command): RawCommand {
  return {
    raw: (args) =>
      configWrapper(name, args, () => openDatastore(), {
        stdout: (s) => process.stdout.write(s),
        stderr: (s) => process.stderr.write(s),
        stdin: () => readFileSync(0, 'utf8'),
        isTTY: Boolean(process.stdout.isTTY),
      }),
  };
}
