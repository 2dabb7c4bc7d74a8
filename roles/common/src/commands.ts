/**
 * The commands every role's program has (roles/<role>/src/main.ts adds its own): the config
 * wrapper commands with the original's names, SetupFirewall, the backup commands of the roles
 * that hold a part of the site, and `supervise`.
 */
import type { CommandTable } from './command.ts';
import { COMMANDS as CONFIG_COMMANDS } from './configwrapper.ts';

/** The role's backup part: the webserver holds the site's files, the database server the database. */
const BACKUP_ROLES = ['webserver', 'database'];
const BACKUP_COMMANDS = ['Backup', 'Restore', 'ListBackups', 'PublishBaseline'] as const;

export function commonCommands(role: string): CommandTable {
  const table: CommandTable = {};
  for (const name of CONFIG_COMMANDS) table[name] = async () => (await import('./configwrapper.ts')).configWrapperCommand(name);
  table.SetupFirewall = async () => ({ raw: async (argv) => (await import('./setup-firewall.ts')).setupFirewallMain(role, argv) });
  table.supervise = async () => ({ raw: async (argv) => (await import('./supervise.ts')).superviseMain(argv) });
  if (BACKUP_ROLES.includes(role)) {
    for (const name of BACKUP_COMMANDS)
      table[name] = async () => ({ raw: async (argv) => (await import('./backup.ts')).backupMain(role, name, argv) });
  }
  return table;
}
