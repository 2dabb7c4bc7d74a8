/**
 * What the local cloud gives a server, and how it starts one: the files a cloud's platform and
 * cloud-init put on a VM (its name, resolver, package mirror, the user's SSH keys, the instance's
 * seed: meta-data and user-data), the init that stands in for systemd and cloud-init, and the
 * launcher that makes a server's root filesystem its own.
 *
 * A server runs in its own user, network, mount, PID, UTS and IPC namespaces. Its root is an
 * overlay of its image's layers under its own upper directory; the launcher pivots into it and
 * unmounts the machine's root, so nothing of the build machine is left in the server's view.
 *
 * Its processes live in a user namespace of their own (uids mapped one to one, so files keep their
 * owners), which owns its network namespace and its final mount namespace: root inside holds
 * CAP_NET_ADMIN for its own firewall and CAP_SYS_ADMIN for its own mounts (FUSE, as s3fs needs on a
 * cloud VM), and no capability over the machine. The PID, UTS and IPC namespaces and the mounts the
 * launcher made (its root, a read-only /sys, /proc with /proc/sys read-only but its network part)
 * belong to the machine's user namespace, so the server can neither undo them nor mount a proc,
 * a devtmpfs or a writable sysfs. The capabilities that would reach past that are also dropped
 * from the bounding set before its PID 1 (tini) starts.
 */

/** Capabilities no process of a server can ever hold (setpriv --bounding-set). */
export const DROPPED_CAPABILITIES = [
  'sys_module',
  'sys_rawio',
  'sys_boot',
  'sys_time',
  'sys_ptrace',
  'mknod',
  'dac_read_search',
  'syslog',
  'mac_admin',
  'mac_override',
  'wake_alarm',
  'block_suspend',
  'audit_control',
  'sys_pacct',
  'lease',
  'linux_immutable',
  'bpf',
  'perfmon',
  'checkpoint_restore',
] as const;

/** The init of a local server (PID 1's child, under tini). */
export const INIT_PATH = '/usr/local/sbin/adt-local-init';

/** The log of the user-data script, as cloud-init writes it. */
export const USER_DATA_LOG = '/var/log/cloud-init-output.log';
/** Where the user-data script's exit code is written when it ends. */
export const USER_DATA_EXIT = '/var/lib/cloud/instance/adt-user-data.exit';
/** Written by the init once the server's services are started. */
export const BOOT_STARTED = '/var/lib/cloud/instance/boot-started';

export interface GuestIdentity {
  name: string;
  /** New for every server: the init runs the user-data once per instance id, as cloud-init does. */
  instanceId: string;
  publicIp: string;
  privateIp: string;
  /** The resolver of /etc/resolv.conf (the cloud's DNS). */
  nameserver: string;
  /** The cloud's package mirror, as an HTTP proxy for apt (null: none). */
  aptProxy: string | null;
  /** Public keys for root's authorized_keys (what a cloud does with the SSH keys of a create). */
  sshKeys: string[];
  userData: string;
  /** A random 32-hex-digit machine id. */
  machineId: string;
}

export interface GuestFile {
  path: string;
  content: string;
  mode: number;
}

const INIT = `#!/bin/sh
# The local cloud's init: what systemd and cloud-init do when a cloud VM boots, reduced to what the
# toolkit's servers use. It starts sshd and cron, runs the user-data once per instance, and waits
# until the server is powered off (poweroff: SIGTERM to PID 1).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LANG=C.UTF-8
HOME=/root
export PATH LANG HOME
mkdir -p /run/sshd /run/lock /var/log /var/lib/cloud/instance
# One host key, ed25519, made at first boot (a cloud's cloud-init makes rsa and ecdsa ones too: the
# toolkit's servers replace them all by the ed25519 key the build pinned, and RSA costs 0.6 s of CPU).
[ -e /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
/usr/sbin/sshd -E /var/log/sshd.log -o HostKey=/etc/ssh/ssh_host_ed25519_key || echo "adt-local-init: sshd did not start" >&2
/usr/sbin/cron || echo "adt-local-init: cron did not start" >&2
: > ${BOOT_STARTED}
iid=$(sed -n 's/^instance-id: *//p' /var/lib/cloud/seed/nocloud/meta-data)
if [ -n "$iid" ] && [ "$(cat /var/lib/cloud/data/instance-id 2>/dev/null)" != "$iid" ]; then
  mkdir -p /var/lib/cloud/data /var/lib/cloud/instance/scripts
  printf '%s\\n' "$iid" > /var/lib/cloud/data/instance-id
  install -m 0700 /var/lib/cloud/seed/nocloud/user-data /var/lib/cloud/instance/scripts/part-001
  (
    cd /
    /var/lib/cloud/instance/scripts/part-001
    echo $? > ${USER_DATA_EXIT}
  ) >> ${USER_DATA_LOG} 2>&1 < /dev/null &
fi
trap 'exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $!
done
`;

const POWEROFF = `#!/bin/sh
# The local cloud's power button: stops this server and every process in it, as poweroff stops a
# VM (no graceful shutdown of services: a snapshot is taken of a server powered off this way).
exec kill -TERM 1
`;

/** The files the cloud writes into a new server's upper directory before it starts. */
export function guestFiles(g: GuestIdentity): GuestFile[] {
  const files: GuestFile[] = [
    { path: '/etc/hostname', content: `${g.name}\n`, mode: 0o644 },
    {
      path: '/etc/hosts',
      content: `127.0.0.1 localhost\n${g.privateIp} ${g.name}\n::1 localhost ip6-localhost ip6-loopback\n`,
      mode: 0o644,
    },
    { path: '/etc/resolv.conf', content: `nameserver ${g.nameserver}\n`, mode: 0o644 },
    { path: '/etc/machine-id', content: `${g.machineId}\n`, mode: 0o444 },
    { path: '/var/lib/cloud/seed/nocloud/meta-data', content: `instance-id: ${g.instanceId}\nlocal-hostname: ${g.name}\n`, mode: 0o600 },
    { path: '/var/lib/cloud/seed/nocloud/user-data', content: g.userData, mode: 0o600 },
    { path: INIT_PATH, content: INIT, mode: 0o755 },
    { path: '/usr/local/sbin/poweroff', content: POWEROFF, mode: 0o755 },
  ];
  if (g.aptProxy) {
    files.push({
      path: '/etc/apt/apt.conf.d/00adt-local-mirror',
      content: `// The local cloud's package mirror (a caching proxy of Debian's archive).\nAcquire::http::Proxy "${g.aptProxy}";\n`,
      mode: 0o644,
    });
  }
  if (g.sshKeys.length) files.push({ path: '/root/.ssh/authorized_keys', content: `${g.sshKeys.join('\n')}\n`, mode: 0o600 });
  return files;
}

export interface LauncherPaths {
  /** Lower directories, topmost first. */
  lower: string[];
  upper: string;
  work: string;
  /** The mount point of the server's root. */
  root: string;
  /** The server's user namespace (a bind mount of its nsfs file, see createServerNamespaces). */
  userns: string;
}

const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;

/**
 * The launcher: run as `/bin/sh -c <it>` inside fresh mount, PID, UTS and IPC namespaces (and the
 * server's network namespace), it mounts the server's root and the kernel's file systems, pivots
 * into the root, drops the machine's root from view and the capabilities of DROPPED_CAPABILITIES,
 * and becomes tini (PID 1) running the init.
 */
export function launcherScript(p: LauncherPaths, hostname: string): string {
  for (const path of [...p.lower, p.upper, p.work, p.root, p.userns]) {
    if (!SAFE_PATH.test(path) || path.includes('..')) throw new Error(`launcher path "${path}": letters, digits, . _ / - only`);
  }
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(hostname)) throw new Error(`hostname "${hostname}"`);
  const r = p.root;
  // In the server's root: leave the machine's root, enter the server's user namespace (fd 3, opened
  // before the pivot), make the mount namespace it owns, drop the bounding set, become tini.
  const bounding = DROPPED_CAPABILITIES.map((c) => `-${c}`).join(',');
  const owned = [
    'exec 3<&-',
    `exec /usr/bin/unshare --mount -- /usr/bin/setpriv --bounding-set ${bounding} -- /usr/bin/tini -- ${INIT_PATH}`,
  ].join(' && ');
  const inner = [
    'umount -l /.adt-oldroot',
    'rmdir /.adt-oldroot',
    `exec /usr/bin/nsenter --user=/proc/self/fd/3 -- /bin/sh -c "${owned}"`,
  ].join(' && ');
  return [
    'set -eu',
    `mount -t overlay overlay -o lowerdir=${p.lower.join(':')},upperdir=${p.upper},workdir=${p.work} ${r}`,
    `mount -t proc -o nosuid,nodev,noexec proc ${r}/proc`,
    // The kernel's settings stay the machine's; the server's own network's settings are its own.
    `mount --bind ${r}/proc/sys ${r}/proc/sys && mount -o remount,bind,ro ${r}/proc/sys`,
    `mount --bind ${r}/proc/sys/net ${r}/proc/sys/net && mount -o remount,bind,rw ${r}/proc/sys/net`,
    `mount -t sysfs -o ro,nosuid,nodev,noexec sysfs ${r}/sys`,
    `mount -t tmpfs -o mode=0755,size=1m,nosuid tmpfs ${r}/dev`,
    `for d in null zero full random urandom tty; do : > ${r}/dev/$d; mount --bind /dev/$d ${r}/dev/$d; done`,
    // FUSE, as on a cloud VM (s3fs mounts the site's shared files), where the machine has it.
    `if [ -c /dev/fuse ]; then : > ${r}/dev/fuse; mount --bind /dev/fuse ${r}/dev/fuse; fi`,
    `mkdir ${r}/dev/pts ${r}/dev/shm`,
    `mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts ${r}/dev/pts`,
    `ln -s pts/ptmx ${r}/dev/ptmx`,
    `ln -s /proc/self/fd ${r}/dev/fd`,
    `ln -s /proc/self/fd/0 ${r}/dev/stdin && ln -s /proc/self/fd/1 ${r}/dev/stdout && ln -s /proc/self/fd/2 ${r}/dev/stderr`,
    `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${r}/dev/shm`,
    `mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs ${r}/run`,
    `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${r}/tmp`,
    // What the kernel exposes about the whole machine stays out of reach.
    `for f in kcore sysrq-trigger kmsg; do if [ -e ${r}/proc/$f ]; then mount --bind /dev/null ${r}/proc/$f; fi; done`,
    `hostname ${hostname}`,
    `exec 3< ${p.userns}`,
    `mkdir -p ${r}/.adt-oldroot`,
    `cd ${r}`,
    'pivot_root . .adt-oldroot',
    `exec /usr/sbin/chroot . /bin/sh -c '${inner}'`,
  ].join('\n');
}
