/**
 * The build machine's program: every helper of roles/build (each a link to roles/common/bin/adt-run
 * named after its command), loaded when called.
 */
import { FLEET_ROLES } from '@adt/fleet';
import { commonCommands, quietAwsSdk, runProgram, type CommandTable } from '@adt/role-common';
import { helperName } from './open.ts';

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
  Release: async () => (await helpers()).releaseCommand,
  deploy: async () => (await import('./deploy.ts')).deployCommand,
  destroy: async () => (await import('./destroy.ts')).destroyCommand,
};
for (const role of FLEET_ROLES) {
  table[helperName('ExecuteOn', role)] = async () => (await helpers()).executeOnCommand(role);
  table[helperName('ConnectTo', role)] = async () => (await helpers()).connectToCommand(role);
  table[helperName('CopyTo', role)] = async () => (await helpers()).copyCommand('to', role);
  table[helperName('CopyFrom', role)] = async () => (await helpers()).copyCommand('from', role);
}
quietAwsSdk();
const [name, ...argv] = process.argv.slice(2);
await runProgram('build', table, name, argv);
