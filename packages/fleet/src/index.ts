export {
  readDeployment,
  exampleFile,
  zoneOf,
  SETTINGS,
  VARIABLE_NAMES,
  CLOUD_PROVIDERS,
  PROVIDER_DEFAULTS,
  onLocalCloud,
  whereIs,
} from './settings.ts';
export type { Deployment, Setting, Provider, CloudProvider } from './settings.ts';
export { openFleet, requireCloud } from './fleet.ts';
export type { Fleet } from './fleet.ts';
export { openKit, localCloudConfig, objectStorageEndpoint, CREDENTIAL_VARIABLES } from './kit.ts';
export type { CloudKit, ObjectStorage, AcmeService } from './kit.ts';
export { deploy, stepTitles, DB_PORT } from './deploy.ts';
export type { DeployOptions, DeploySummary } from './deploy.ts';
export { destroy } from './destroy.ts';
export type { DestroySummary } from './destroy.ts';
export { wantedServers, decideServers, ROLE_ORDER } from './servers.ts';
export type { WantedServer, FoundServer, ServerDecision } from './servers.ts';
export { waitReady, bootFailure, booting } from './readiness.ts';
export type { Booting } from './readiness.ts';
export { preparedImageName, ensurePreparedImages, canPrepareImages } from './images.ts';
export {
  ensureSiteCertificate,
  ensureAuthCertificate,
  renewCertificates,
  trustAnchorFile,
  legoCertifier,
  recordingCertifier,
} from './tls.ts';
export type { Certifier, TlsContext, RenewSummary } from './tls.ts';
export { Ssh, shellQuote } from './ssh.ts';
export { BuildState } from './state.ts';
export type { BuildRecord } from './state.ts';
export {
  serversOf,
  executeOn,
  runRoleCommand,
  backupNow,
  restoreFleet,
  publishBaseline,
  listBackups,
  adjustScaling,
  appAdmin,
  servedSerial,
  status,
  FLEET_ROLES,
  listReleases,
  publishRelease,
  rollBack,
  rollOut,
} from './operations.ts';
export type { StatusRow, BackupResult, ServerRole, RolloutStep } from './operations.ts';
