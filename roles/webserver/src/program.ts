/** The webserver's program: every command of roles/webserver (each a link to roles/common/bin/adt-run). */
import { commonCommands, runProgram, type CommandTable } from '@adt/role-common';

const table: CommandTable = {
  ...commonCommands('webserver'),
  bootstrap: async () => ({ raw: async (argv) => (await import('./bootstrap.ts')).main(argv) }),
  SyncCertificate: async () => ({ raw: async (argv) => (await import('./sync-certificate.ts')).syncCertificateMain(argv) }),
  SwitchRelease: async () => (await import('./release-commands.ts')).switchReleaseCommand,
  PackRelease: async () => (await import('./release-commands.ts')).packReleaseCommand,
  SharedFiles: async () => ({ raw: async () => (await import('./release-commands.ts')).sharedFilesMain() }),
};
const [name, ...argv] = process.argv.slice(2);
await runProgram('webserver', table, name, argv);
