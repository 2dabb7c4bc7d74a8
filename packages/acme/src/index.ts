export { legoArgv, legoEnv, obtainCertificate, certificateInfo, certificateFiles } from './lego.ts';
export type { AcmeDnsAccess, LegoOptions, ObtainOptions, IssuedAcmeCertificate } from './lego.ts';
