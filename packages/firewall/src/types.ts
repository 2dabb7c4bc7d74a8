/** Shapes of the firewall: the fleet as published, the options of a deployment, the computed policy. */

export type FleetRole = 'webserver' | 'database' | 'autoscaler' | 'auth';

/** The fleet as it is now: the addresses each role has published in the config datastore. */
export interface FleetSnapshot {
  /** The build machine's addresses (SSH comes from here). */
  buildMachine: string[];
  webservers: string[];
  autoscalers: string[];
  databases: string[];
  auth: string[];
  /** Clients that signed in on the authentication server, each until its expiry. */
  authorisedClients: { ip: string; expiresAt: string }[];
}

export type WebMode = 'open' | 'cloudflare' | 'auth';

export interface ExtraPort {
  role: FleetRole;
  port: number | [number, number];
  protocol: 'tcp' | 'udp';
  /** Address or CIDR allowed (IPv4 or IPv6). */
  source: string;
}

export interface PolicyOptions {
  /** Who may reach the webservers' HTTPS port. */
  webMode: WebMode;
  /** SSH port of every machine (default 22). */
  sshPort?: number;
  /** Database port (3306 MariaDB, 5432 Postgres; default 3306). */
  dbPort?: number;
  /** Webserver HTTPS port (default 443). */
  httpsPort?: number;
  /** Also open port 80 on webservers (redirects to HTTPS) to the same sources as HTTPS. */
  http?: boolean;
  /** Extra ports per role (the original's firewallports.dat). */
  extraPorts?: ExtraPort[];
  /** Cloudflare's ranges, for web mode `cloudflare` (default: the bundled list). */
  cloudflare?: { v4: string[]; v6: string[] };
  /** Now, to drop expired client grants (default: the current time). */
  now?: Date;
}

/** One allow rule of a host. Everything else inbound is refused. */
export interface HostRule {
  protocol: 'tcp' | 'udp';
  port: number | [number, number];
  /** IPv4/IPv6 addresses or CIDRs; never empty. */
  sources: string[];
  /** Why the rule exists (shown in iptables comments and ufw status). */
  comment: string;
}

export interface HostPolicy {
  role: FleetRole;
  rules: HostRule[];
}

/** Where the fleet is read from (the config datastore in production). */
export interface FleetSource {
  snapshot(): Promise<FleetSnapshot>;
}

/** A host firewall backend: applies a policy atomically and tells which policy is applied. */
export interface HostFirewall {
  readonly name: string;
  /** The fingerprint of the policy applied now, or null when none of ours is. */
  applied(): Promise<string | null>;
  /** Applies `policy`; on failure the previous rules stay in force. */
  apply(policy: HostPolicy, fingerprint: string): Promise<void>;
}
