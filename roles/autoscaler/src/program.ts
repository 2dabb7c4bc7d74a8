/** The autoscaler's program: every command of roles/autoscaler (each a link to roles/common/bin/adt-run). */
import { commonCommands, runProgram, type CommandTable } from '@adt/role-common';

const table: CommandTable = {
  ...commonCommands('autoscaler'),
  bootstrap: async () => ({ raw: async (argv) => (await import('./bootstrap.ts')).main(argv) }),
  ManuallyScale: async () => ({ raw: async (argv) => (await import('./manually-scale.ts')).manuallyScaleMain(argv) }),
  'scaling-service': async () => ({ raw: async () => (await import('./service.ts')).main() }),
};
const [name, ...argv] = process.argv.slice(2);
await runProgram('autoscaler', table, name, argv);
