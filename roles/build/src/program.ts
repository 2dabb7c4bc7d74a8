/**
 * The build machine's program: every helper of roles/build (each a link to roles/common/bin/adt-run
 * named after its command), loaded when called.
 */
import { FLEET_ROLES } from '@adt/fleet';
import { commonCommands, quietAwsSdk, runProgram, type CommandTable } from '@adt/role-common';

const capital = (r: string) => `${r[0]!.toUpperCase()}${r.slice(1)}`;
const helpers = () => import('./helpers.ts');

const table: CommandTable = {
  ...commonCommands('build'),
  status: async () => (await helpers()).statusCommand,
  Backup: async () => (await helpers()).backupCommand,
  Restore: async () => (await helpers()).restoreCommand,
  ListBackups: async () => (await helpers()).listBackupsCommand,
  AdjustScaling: async () => (await helpers()).adjustScalingCommand,
  PublishBaseline: async () => (await helpers()).publishBaselineCommand,
  AppAdmin: async () => (await helpers()).appAdminCommand,
  RenewCertificate: async () => (await helpers()).renewCertificateCommand,
  deploy: async () => (await import('./deploy.ts')).deployCommand,
  destroy: async () => (await import('./destroy.ts')).destroyCommand,
};
for (const role of FLEET_ROLES) {
  table[`ExecuteOn${capital(role)}`] = async () => (await helpers()).executeOnCommand(role);
  table[`ConnectTo${capital(role)}`] = async () => (await helpers()).connectToCommand(role);
  table[`CopyTo${capital(role)}`] = async () => (await helpers()).copyCommand('to', role);
  table[`CopyFrom${capital(role)}`] = async () => (await helpers()).copyCommand('from', role);
}
quietAwsSdk();
const [name, ...argv] = process.argv.slice(2);
await runProgram('build', table, name, argv);
