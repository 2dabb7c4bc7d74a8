/**
 * A stand-in service for firewall tests: something listening on a server's ports, so that a
 * probe's connect succeeds exactly when the firewall lets it through.
 */

/**
 * The argv of a process that listens on every one of `ports` on `address` and accepts and closes
 * each connection, until it is killed. It is Perl with perl-base's modules only (IO::Socket::INET,
 * IO::Select): what every Debian system has, the local cloud's stock image included (which has no
 * python3). It exits non-zero, saying which port, when one cannot be listened on (e.g. one that
 * sshd already has). Run it detached where the ports should be
 * (e.g. `cloud.execArgv(id, ['setsid', ...listenerArgv([443, 3306])])`).
 */
export function listenerArgv(ports: readonly number[], address = '0.0.0.0'): string[] {
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`listenerArgv: bad port ${p}`);
  if (ports.length === 0) throw new RangeError('listenerArgv: no ports');
  const script = [
    'my ($address, @ports) = @ARGV;',
    'my $sel = IO::Select->new;',
    'for my $p (@ports) {',
    '  my $s = IO::Socket::INET->new(LocalAddr => $address, LocalPort => $p, Proto => "tcp", Listen => 64, ReuseAddr => 1)',
    '    or die "listener: cannot listen on $address:$p: $@\\n";',
    '  $s->blocking(0);',
    '  $sel->add($s);',
    '}',
    'while (1) {',
    '  for my $s ($sel->can_read) {',
    // Non-blocking: a client that gave up between select and accept gives undef, no reason to stop listening.
    '    my $c = $s->accept;',
    '    close $c if $c;',
    '  }',
    '}',
  ].join('\n');
  return ['perl', '-MIO::Socket::INET', '-MIO::Select', '-e', script, address, ...ports.map(String)];
}
