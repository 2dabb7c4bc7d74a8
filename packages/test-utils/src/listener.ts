/**
 * A stand-in service for firewall tests: something listening on a server's ports, so that a
 * probe's connect succeeds exactly when the firewall lets it through.
 */

/**
 * The argv of a process (Debian's python3, no packages) that listens on every one of `ports` on
 * `address` and accepts and closes each connection, until it is killed. Run it detached where the
 * ports should be (e.g. `cloud.execArgv(id, ['setsid', ...listenerArgv([22, 443])])`).
 */
export function listenerArgv(ports: readonly number[], address = '0.0.0.0'): string[] {
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`listenerArgv: bad port ${p}`);
  if (ports.length === 0) throw new RangeError('listenerArgv: no ports');
  const script = [
    'import socket, selectors',
    'sel = selectors.DefaultSelector()',
    `for p in (${ports.join(', ')},):`,
    '  s = socket.socket()',
    '  s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    `  s.bind((${JSON.stringify(address)}, p))`,
    '  s.listen(64)',
    '  s.setblocking(False)',
    '  sel.register(s, selectors.EVENT_READ)',
    'while True:',
    '  for k, _ in sel.select():',
    '    try:',
    '      c, _ = k.fileobj.accept()',
    '      c.close()',
    // A client that gave up between select and accept is no reason to stop listening.
    '    except OSError:',
    '      pass',
    '',
  ].join('\n');
  return ['python3', '-c', script];
}
