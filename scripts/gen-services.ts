/**
 * Generates src/net/services-data.ts from a services(5) file (Debian netbase's /etc/services),
 * so the executable knows port names on a box that has no /etc/services (Windows, containers).
 *
 *   bun scripts/gen-services.ts [--input /etc/services] [--output FILE] [--check]
 *
 * `--check` exits 1 when the committed file differs from what the input would produce.
 */

import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

/**
 * Short descriptions for common services whose line in /etc/services has no comment, so that
 * `describePort` says something for the ports people actually meet.
 */
const HAND_DESCRIPTIONS: Record<string, string> = {
  echo: "Echo",
  discard: "Discard",
  systat: "Active users",
  daytime: "Daytime",
  netstat: "Network status",
  qotd: "Quote of the day",
  chargen: "Character generator",
  "ftp-data": "FTP data",
  ftp: "File Transfer Protocol",
  fsp: "File Service Protocol",
  telnet: "Telnet",
  smtp: "Simple Mail Transfer Protocol",
  time: "Time protocol",
  whois: "WHOIS directory",
  bootps: "DHCP/BOOTP server",
  bootpc: "DHCP/BOOTP client",
  tftp: "Trivial File Transfer Protocol",
  finger: "Finger user information",
  auth: "Ident authentication service",
  "cmip-agent": "ISO management agent over IP",
  "ptp-event": "Precision Time Protocol events",
  "ptp-general": "Precision Time Protocol general messages",
  kpasswd: "Kerberos password change",
  qmqp: "Quick Mail Queuing Protocol",
  exec: "Remote execution (rexec)",
  biff: "Mail arrival notification",
  login: "Remote login (rlogin)",
  who: "Remote who daemon",
  syslog: "Syslog",
  talk: "Talk",
  ntalk: "Talk (new protocol)",
  "dhcpv6-client": "DHCPv6 client",
  "dhcpv6-server": "DHCPv6 server",
  silc: "Secure Internet Live Conferencing",
  rsync: "rsync file synchronization",
  ftps: "FTP over TLS (control)",
  proofd: "PROOF parallel analysis daemon",
  rootd: "ROOT remote file server",
  openvpn: "OpenVPN",
  ingreslock: "Ingres lock service",
  kermit: "Kermit file transfer",
  groupwise: "Novell GroupWise",
  l2f: "Layer 2 Tunneling Protocol",
  radius: "RADIUS authentication",
  datametrics: "RADIUS authentication (old port)",
  "sa-msg-port": "RADIUS accounting (old port)",
  gnunet: "GNUnet peer-to-peer",
  gsigatekeeper: "Globus gatekeeper",
  "f5-globalsite": "F5 GlobalSite",
  gsiftp: "GridFTP",
  gpsd: "GPS daemon",
  "iscsi-target": "iSCSI target",
  mysql: "MySQL database",
  "ms-wbt-server": "Remote Desktop Protocol (RDP)",
  "sip-tls": "Session Initiation Protocol over TLS",
  cfengine: "CFEngine configuration management",
  amqp: "Advanced Message Queuing Protocol",
  "x11-1": "X Window System display 1",
  "x11-2": "X Window System display 2",
  "x11-3": "X Window System display 3",
  "x11-4": "X Window System display 4",
  "x11-5": "X Window System display 5",
  "x11-6": "X Window System display 6",
  "x11-7": "X Window System display 7",
  redis: "Redis key-value store",
  bbs: "Bulletin board system",
  "afs3-fileserver": "AFS file server",
  dicom: "DICOM medical imaging",
  clearcase: "ClearCase",
  xinetd: "xinetd control",
  webmin: "Webmin web administration",
  "sgi-crsd": "SGI cluster reset services daemon",
};

const DEFAULT_OUTPUT = new URL("../src/net/services-data.ts", import.meta.url).pathname;

/** Comments that describe a detail rather than the service, replaced outright. */
const REPLACED_COMMENTS: Record<string, string> = {
  "shell/tcp": "Remote shell (rsh)",
};

/** Only these reach the table: sockwarden lists TCP and UDP endpoints. */
const PROTOCOLS = new Set(["tcp", "udp"]);

/** One TCP or UDP line of a services file. */
export interface Entry {
  name: string;
  port: number;
  protocol: string;
  aliases: string[];
  description: string;
}

/** Parses services(5) text, keeping TCP and UDP lines in file order. */
export function parseServices(text: string): Entry[] {
  const entries: Entry[] = [];
  for (const [index, rawLine] of text.split("\n").entries()) {
    const hash = rawLine.indexOf("#");
    const body = (hash === -1 ? rawLine : rawLine.slice(0, hash)).trim();
    if (body === "") continue;
    const comment = hash === -1 ? "" : rawLine.slice(hash + 1).trim();
    const [name, portProtocol, ...aliases] = body.split(/\s+/);
    const match = /^([0-9]+)\/([a-z]+)$/.exec(portProtocol ?? "");
    if (name === undefined || match === null) {
      throw new Error(`line ${index + 1}: expected "name port/protocol [aliases]": ${rawLine}`);
    }
    const port = Number(match[1]);
    const protocol = match[2] ?? "";
    if (port > 65535) throw new Error(`line ${index + 1}: port ${port} out of range`);
    if (!PROTOCOLS.has(protocol)) continue;
    const description = REPLACED_COMMENTS[`${name}/${protocol}`] ?? clean(comment);
    entries.push({ name, port, protocol, aliases, description });
  }
  return entries;
}

/** Tabs and newlines separate fields in the generated table, so they cannot appear inside one. */
function clean(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * Fills in missing descriptions (from the twin line of the other protocol, else the hand-written
 * table) and returns the hand-written names that described nothing, so stale ones are noticed.
 */
export function describeAll(entries: Entry[]): string[] {
  // netbase often comments only the TCP line of a service that has a UDP twin.
  const byNamePort = new Map<string, string>();
  for (const entry of entries) {
    const key = `${entry.name}/${entry.port}`;
    if (entry.description !== "" && !byNamePort.has(key)) byNamePort.set(key, entry.description);
  }
  const unused = new Set(Object.keys(HAND_DESCRIPTIONS));
  for (const entry of entries) {
    if (entry.description !== "") continue;
    const twin = byNamePort.get(`${entry.name}/${entry.port}`);
    const hand = HAND_DESCRIPTIONS[entry.name];
    if (twin !== undefined) entry.description = twin;
    else if (hand !== undefined) {
      entry.description = hand;
      unused.delete(entry.name);
    }
  }
  return [...unused];
}

/** The generated module's text. */
export function render(entries: Entry[], source: string): string {
  const lines = entries.map((entry) => {
    const fields = [entry.name, `${entry.port}/${entry.protocol}`, entry.aliases.join(" ")];
    return JSON.stringify([...fields, entry.description].join("\t"));
  });
  return [
    `// Generated by scripts/gen-services.ts from ${source}; do not edit by hand.`,
    "// Port numbers and names are Debian netbase's; descriptions are its comments, or short",
    "// hand-written ones from the generator for common services it leaves uncommented.",
    "",
    "/**",
    " * The services table, one entry per line in /etc/services order:",
    " * `name<TAB>port/protocol<TAB>aliases separated by spaces<TAB>description`;",
    " * any field but the first two may be empty.",
    " */",
    "export const SERVICES_TABLE: readonly string[] = [",
    ...lines.map((line) => `  ${line},`),
    "];",
    "",
  ].join("\n");
}

function main(): void {
  const { values } = parseArgs({
    options: {
      input: { type: "string", default: "/etc/services" },
      output: { type: "string", default: DEFAULT_OUTPUT },
      check: { type: "boolean", default: false },
    },
  });
  const input = values.input;
  const output = values.output;
  const entries = parseServices(readFileSync(input, "utf8"));
  const unused = describeAll(entries);
  if (unused.length > 0) {
    console.warn(`hand descriptions with no uncommented entry to describe: ${unused.join(", ")}`);
  }
  const text = render(entries, "Debian netbase's /etc/services");
  if (values.check) {
    let current = "";
    try {
      current = readFileSync(output, "utf8");
    } catch {
      // A missing file is simply out of date.
    }
    if (current !== text) {
      console.error(`${output} is out of date; run bun scripts/gen-services.ts`);
      process.exit(1);
    }
    console.log(`${output} is up to date (${entries.length} entries)`);
    return;
  }
  writeFileSync(output, text);
  console.log(`wrote ${output} (${entries.length} entries)`);
}

if (import.meta.main) main();
