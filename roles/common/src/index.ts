export { openDatastore, datastoreSettings, DEFAULT_DATASTORE_ENV } from './datastore.ts';
export { everySeconds, logLine, runMain, usage } from './main.ts';
export { configWrapper, COMMANDS } from './configwrapper.ts';
export type { Command as ConfigCommand, Io } from './configwrapper.ts';
export { firewallSettings } from './setup-firewall.ts';
export { whoAmI, interfaceAddress, startPeriodicJobs } from './host.ts';
export { httpsGet } from '@adt/webserver';
export type { Self } from './host.ts';
export { DB_LAYOUT, SITE_BACKUP_DIR, SITE_DIR, CODE_DIR, JOB_LOG_DIR } from './layout.ts';
export { backupMain, backupCronFile, BACKUP_PARTS } from './backup.ts';
export { siblingBucket, quietAwsSdk } from './datastore.ts';
export { defineCommand, runCommand, runProgram, COMMON_OPTIONS } from './command.ts';
export type { Command, CommandSpec, CommandContext, CommandTable, RawCommand, OptionSpec, Output } from './command.ts';
export { commonCommands } from './commands.ts';
export { startService } from './supervise.ts';
export { runBootstrap, receiveSecrets, installRolePackages, bootProgress, SECRETS_FILE } from './boot.ts';
export type { BootContext } from './boot.ts';
export {
  SITE,
  STOCK_CORE_DIR,
  STOCK_CONTENT_DIR,
  S3FS_PASSWD,
  WEB_UID,
  configBucketClient,
  currentOrFirstRelease,
  ensureUploadFolders,
  installReleaseHere,
  publishCode,
  s3fsArgv,
  sharedFilesMounted,
  sharedFilesService,
  waitForSharedFiles,
} from './site.ts';
