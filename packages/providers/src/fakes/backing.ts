/**
 * What a cloud's API fake can be backed by: a cloud that really runs servers (the local cloud, see
 * @adt/localcloud's `emulators.ts`). A backed fake answers with the provider's documented requests
 * and responses as before, but an instance it creates is a real server that runs the instance's
 * user-data, with the addresses the API then reports; its firewall calls become the backing cloud's
 * native rules; its DNS records are served to resolvers. What the backing cannot do is refused
 * with the provider's error shape and a message that says so, never imitated.
 */
import type { ComputeProvider, InboundRule, NativeFirewallProvider, Role } from '../types.ts';
import type { FakeApi, FakeResponse } from './harness.ts';

export interface BackingRecord {
  /** Fully qualified, without trailing dot. */
  name: string;
  type: string;
  /** As a zone file holds it (a TXT record's text without quotes). */
  content: string;
  ttl: number;
}

export interface FakeBacking {
  /** Creates, reports and destroys the real servers (names of the toolkit's form: role and build in them). */
  compute: ComputeProvider;
  /** The cloud-level firewall of a build's role, outside the servers. */
  firewall: NativeFirewallProvider;
  /** The private network the servers are on (the region's default VPC of the fake). */
  privateCidr: string;
  /** The backing cloud's stock image, which the provider's stock Debian 12 image stands for. */
  stockImage: string;
  /** Serves a zone with exactly these records (A and TXT) to resolvers; `null` removes the zone. */
  zone(zone: string, records: readonly BackingRecord[] | null): Promise<void>;
}

/** The build and role a firewall's target tag or name names (`adt-<build>-<role>`), or null. */
export function roleOfTag(tag: string): { buildId: string; role: Role } | null {
  const m = /^adt-([a-z0-9]{1,24})-(webserver|database|autoscaler|auth|build)$/.exec(tag);
  return m ? { buildId: m[1]!, role: m[2] as Role } : null;
}

/** Applies `rules` (or removes the firewall, null) for every build role among `tags`. */
export async function applyTagged(backing: FakeBacking, tags: readonly string[], rules: InboundRule[] | null): Promise<void> {
  for (const t of tags) {
    const r = roleOfTag(t);
    if (!r) continue;
    if (rules) await backing.firewall.apply(r.buildId, r.role, rules);
    else await backing.firewall.remove(r.buildId, r.role);
  }
}

/** Whether an error of the backing is its refusal of what it was asked (the caller's error: exit code 2, or a 4xx), not a failure. */
export function refusedByBacking(e: unknown): boolean {
  const x = e as { exitCode?: number; status?: number | null } | null;
  return x?.exitCode === 2 || (typeof x?.status === 'number' && x.status >= 400 && x.status < 500);
}

/** A fake's answer to a failure of the backing: its refusal a 400, anything else a 500, each with the backing's message. */
export function backingFailure(api: Pick<FakeApi, 'error'>, e: unknown): FakeResponse {
  return api.error(refusedByBacking(e) ? 400 : 500, `the local cloud: ${backingMessage(e)}`);
}

/** The message of an error of the backing. */
function backingMessage(e: unknown): string {
  return (e as { message?: string } | null)?.message ?? String(e);
}

/** A snapshot the backing takes: `image` once made; `error` (and whether the backing refused it) if it failed. */
export interface BackingSnapshotJob {
  image?: string;
  error?: string;
  refused?: boolean;
}

/** How long a fake's snapshot request waits for the backing before it answers "in progress". */
export const BACKING_SNAPSHOT_WAIT_MS = 1_000;

/**
 * Starts the backing's snapshot and waits for it up to BACKING_SNAPSHOT_WAIT_MS, so that a refusal
 * (a server still running) is answered as the API's error; a longer one goes on and is polled as
 * the API's status. `made` is called with the backing's image once there is one.
 */
export async function backingSnapshot(take: () => Promise<string>, made: (image: string) => void): Promise<BackingSnapshotJob> {
  const job: BackingSnapshotJob = {};
  const settled = Promise.resolve()
    .then(take)
    .then(
      (image) => {
        job.image = image;
        made(image);
      },
      (e: unknown) => {
        job.error = backingMessage(e);
        job.refused = refusedByBacking(e);
      },
    );
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, BACKING_SNAPSHOT_WAIT_MS)))]);
  clearTimeout(timer);
  return job;
}
