/**
 * The build machine's way onto its servers, on every provider: OpenSSH with the build's own key
 * (root's authorized key on every server) and each server's host key pinned when the server was
 * created (`hostkeys/<name>` in the datastore, written by whoever created it): strict host key
 * checking against that key alone, no trust on first use, no password, no agent.
 *
 * Commands go as argv: each argument is quoted for the server's shell, never interpolated.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { keys, type ConfigStore } from '@adt/configstore';
import { AdtError, execaRunner, type Argv, type Runner, type RunOptions, type RunResult } from '@adt/core';
import { knownHostsLine } from '@adt/launch';
import type { Server } from '@adt/providers';

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) => new AdtError(code, message, { pkg: 'fleet', driver: 'ssh', exitCode });

/** One argument for a POSIX shell: single-quoted, quotes inside escaped. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

export interface SshOptions {
  /** The build's private key (0600). */
  keyFile: string;
  /** The known_hosts file written from the pinned host keys (0600). */
  knownHostsFile: string;
  runner?: Runner;
}

export class Ssh {
  readonly #o: SshOptions;
  readonly #run: Runner;

  constructor(o: SshOptions) {
    this.#o = o;
    this.#run = o.runner ?? execaRunner({ timeoutMs: 600_000 });
  }

  /**
   * Writes known_hosts for `servers` from their pinned host keys. A server with no recorded key is
   * refused (it was not created by the toolkit, or its record is gone): never trusted on first use.
   */
  async pin(store: ConfigStore, servers: Server[]): Promise<void> {
    const lines: string[] = [];
    for (const s of servers) {
      const k = await store.get(keys.hostKeys.key(s.name));
      if (!k) {
        throw fail(
          'NO_HOST_KEY',
          `${s.name} has no pinned SSH host key in the datastore (${keys.hostKeys.key(s.name).path}): it was not created by this build, ` +
            'so its key cannot be verified; replace it (deploy again) rather than trust a key on first use',
        );
      }
      lines.push(knownHostsLine(s.name, k.publicKey));
    }
    await mkdir(dirname(this.#o.knownHostsFile), { recursive: true, mode: 0o700 });
    await writeFile(this.#o.knownHostsFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  }

  /** The options every connection uses, for `s` (its name is the pinned key's alias). */
  options(s: Server, interactive = false): string[] {
    return [
      '-i',
      this.#o.keyFile,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${this.#o.knownHostsFile}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `HostKeyAlias=${s.name}`,
      '-o',
      'HostKeyAlgorithms=ssh-ed25519',
      '-o',
      'PasswordAuthentication=no',
      '-o',
      `BatchMode=${interactive ? 'no' : 'yes'}`,
      '-o',
      'ConnectTimeout=10',
      '-o',
      'ServerAliveInterval=15',
      '-o',
      'LogLevel=ERROR',
    ];
  }

  /** The address the build reaches a server at. */
  static address(s: Server): string {
    const ip = s.publicIp ?? s.privateIp;
    if (!ip) throw fail('NO_ADDRESS', `${s.name} has no address yet`);
    return ip;
  }

  /** argv of `ssh` running `command` (argv) on `s`. */
  argv(s: Server, command: string[], interactive = false): Argv {
    return [
      'ssh',
      ...this.options(s, interactive),
      ...(interactive ? ['-t'] : []),
      `root@${Ssh.address(s)}`,
      ...(command.length ? ['--', command.map(shellQuote).join(' ')] : []),
    ] as unknown as Argv;
  }

  /** Runs `command` on `s`; its output and exit code (255: ssh itself failed). */
  exec(s: Server, command: string[], o: RunOptions = {}): Promise<RunResult> {
    return this.#run.run(this.argv(s, command), { nothrow: true, ...o });
  }

  /** An interactive session (a shell, or `command`) on `s`, on this terminal; resolves with its exit code. */
  interactive(s: Server, command: string[] = []): Promise<number> {
    const argv = this.argv(s, command, true);
    const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit' });
    return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  }

  /** Copies local `paths` to `remoteDir` on `s` (scp -p -r: modes and times kept, directories whole). */
  copyTo(s: Server, paths: string[], remoteDir: string): Promise<RunResult> {
    return this.#run.run(
      ['scp', '-q', '-p', '-r', ...this.options(s), '--', ...paths, `root@${Ssh.address(s)}:${remoteDir}`] as unknown as Argv,
      { nothrow: true, timeoutMs: 3_600_000 },
    );
  }

  /** Copies `remotePaths` of `s` to `localDir`. */
  copyFrom(s: Server, remotePaths: string[], localDir: string): Promise<RunResult> {
    return this.#run.run(
      [
        'scp',
        '-q',
        '-p',
        '-r',
        ...this.options(s),
        '--',
        ...remotePaths.map((p) => `root@${Ssh.address(s)}:${p}`),
        localDir,
      ] as unknown as Argv,
      { nothrow: true, timeoutMs: 3_600_000 },
    );
  }
}
