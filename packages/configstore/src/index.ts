export { ConfigStore, SPACES_WRITE_BUDGET } from './store.ts';
export type { ConfigStoreOptions, Lease, LeaseHolder, WriteBudget } from './store.ts';
export { keys, isSecretKey } from './keys.ts';
export type {
  Key,
  KeyFamily,
  JsonValue,
  Registration,
  DbCredentials,
  LeaseRecord,
  Grant,
  BuildMarker,
  Readiness,
  SiteSettings,
  SiteTls,
  SharedFiles,
  Release,
  Releases,
  BackupSettings,
  ScalingSettings,
  WebserverImage,
  NativeFirewall,
  ProviderAccess,
  ScalingEvent,
  AuthSettings,
  AuthSecrets,
  BootStep,
  BootFailure,
  HostKey,
  BundleRecord,
  ApplicationSecrets,
} from './keys.ts';
export { configBucketName, filesBucketName, backupBucketName, validateBucketName, validateBuildId, siteHost } from './bucket-name.ts';
export { generateSecretKey, parseSecretKey, encrypt as encryptValue, decrypt as decryptValue } from './crypto.ts';
export { validateKey } from './_validate.ts';
export { ErrorCodes, PreconditionFailed } from './errors.ts';
export type { ErrorCode } from './errors.ts';
export type { ObjectDriver, StoredObject, ObjectMeta, WriteOptions, DriverFlags } from './types.ts';
export { registerServer, forgetServer } from './registry.ts';
export type { RegisteredRole, ServerIdentity } from './registry.ts';
