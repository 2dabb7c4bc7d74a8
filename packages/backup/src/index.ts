export { Backups, tarArgv, dumpArgv } from './backups.ts';
export type { BackupsOptions, Source, WebrootSource, DatabaseSource, RestoreTargets } from './backups.ts';
export { PERIODS } from './types.ts';
export type { Period, Manifest, PartInfo, PartKind } from './types.ts';
export { encryptStream, decryptStream } from './crypto-stream.ts';
