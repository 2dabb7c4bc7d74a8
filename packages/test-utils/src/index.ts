export { rejects, throws } from './assert.ts';
export type { Expected, ExpectedError, ThrownError } from './assert.ts';
export { testS3Client, quietAwsSdk, writeS3cmdConfig, S3RVER_CREDENTIALS } from './s3.ts';
export type { TestS3ClientOptions } from './s3.ts';
export { tempDir, removeTempDir, withTempDir } from './temp.ts';
export type { TempDirOptions } from './temp.ts';
export { listenerArgv } from './listener.ts';
export { setup, cleanup } from './hooks.ts';
export { killPids, freeLowPort, startDetached } from './processes.ts';
