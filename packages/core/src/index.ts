export { AdtError, isAdtError, errorFactory } from './errors.ts';
export type { AdtErrorOptions } from './errors.ts';
export { retry, sleep, backoffDelay } from './retry.ts';
export type { RetryOptions } from './retry.ts';
export { execaRunner, recordingRunner, CommandError } from './runner.ts';
export type { Argv, Runner, RunOptions, RunResult } from './runner.ts';
export { processAlive, freePort, livePidFromFile, waitForPidFile, stopProcess } from './process.ts';
