/** The authentication server's program: every command of roles/auth (each a link to roles/common/bin/adt-run). */
import { commonCommands, runProgram, type CommandTable } from '@adt/role-common';

const table: CommandTable = {
  ...commonCommands('auth'),
  bootstrap: async () => ({ raw: async (argv) => (await import('./bootstrap.ts')).main(argv) }),
  'sign-in-service': async () => ({ raw: async () => (await import('./serve.ts')).main() }),
};
const [name, ...argv] = process.argv.slice(2);
await runProgram('auth', table, name, argv);
