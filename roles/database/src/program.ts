/** The database server's program: every command of roles/database (each a link to roles/common/bin/adt-run). */
import { commonCommands, runProgram, type CommandTable } from '@adt/role-common';

const table: CommandTable = {
  ...commonCommands('database'),
  bootstrap: async () => ({ raw: async (argv) => (await import('./bootstrap.ts')).main(argv) }),
};
const [name, ...argv] = process.argv.slice(2);
await runProgram('database', table, name, argv);
