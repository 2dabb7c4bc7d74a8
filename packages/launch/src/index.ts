export { sealEnvelope, openEnvelope, envelopeObject } from './envelope.ts';
export type { Envelope } from './envelope.ts';
export { userDataScript, CODE_DIR, ENVELOPE_FILE } from './user-data.ts';
export type { UserDataOptions } from './user-data.ts';
export { generateKeyPair, knownHostsLine } from './host-key.ts';
export type { KeyPair } from './host-key.ts';
export { launchServer, publishArtifacts, removeEnvelope, signLink } from './launch.ts';
export type { LaunchContext, LaunchRequest, Launched, LocalArtifacts } from './launch.ts';
export { ROLE_PACKAGES, rolePackages } from './packages.ts';
export {
  KEPT_RELEASES,
  downloadRelease,
  endRollout,
  makeReleaseCurrent,
  releaseObject,
  rollBackRelease,
  uploadRelease,
} from './releases.ts';
