export { legoArgv, legoEnv, obtainCertificate, certificateInfo, certificateFiles } from './lego.ts';
export type { AcmeDnsAccess, LegoOptions, ObtainOptions, IssuedAcmeCertificate } from './lego.ts';
export { startPebble, attachPebble } from './pebble.ts';
export type { Pebble, PebbleOptions } from './pebble.ts';
