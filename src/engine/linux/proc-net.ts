/**
 * The fallback source when NETLINK_SOCK_DIAG is unavailable: /proc/net/{tcp,tcp6,udp,udp6}.
 * Lines are turned into the same records the netlink decoder produces, so everything above sees
 * one shape. These files carry no traffic counters and no socket cookie.
 *
 * Line format (net/ipv4/tcp_ipv4.c get_tcp4_sock and friends):
 *   sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
 * Addresses are the in-memory bytes of the address printed as 32-bit words in host order.
 */
import fs from "node:fs";
import { DecodeError } from "../../errors.ts";
import { AF_INET, AF_INET6, IPPROTO_TCP, type DiagRecord } from "./sock-diag-codec.ts";
import { formatIPv4, formatIPv6 } from "../../net/address.ts";
import type { DiagSource, DumpResult, RecordSink } from "./diag-source.ts";

export function parseProcNet(text: string, family: number, file = "/proc/net"): DiagRecord[] {
  const records: DiagRecord[] = [];
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const f = line.split(/\s+/);
    if (f.length < 10) throw new DecodeError(`${file}:${i + 1}: ${f.length} fields, at least 10 were wanted`);
    const [localAddr, localPort] = splitHexEndpoint(f[1]!, family, file, i + 1);
    const [remoteAddr, remotePort] = splitHexEndpoint(f[2]!, family, file, i + 1);
    const [tx, rx] = f[4]!.split(":");
    records.push({
      family,
      state: parseInt(f[3]!, 16),
      sourcePort: localPort,
      destinationPort: remotePort,
      source: family === AF_INET ? formatIPv4(localAddr) : formatIPv6(localAddr),
      destination: family === AF_INET ? formatIPv4(remoteAddr) : formatIPv6(remoteAddr),
      interfaceIndex: 0,
      cookieLow: 0,
      cookieHigh: 0,
      receiveQueue: parseInt(rx ?? "0", 16),
      sendQueue: parseInt(tx ?? "0", 16),
      uid: Number(f[7]),
      inode: Number(f[9]),
      hasTcpInfo: false,
      rttMicros: null,
      bytesAcked: null,
      bytesReceived: null,
      bytesSent: null,
      segsOut: null,
      segsIn: null,
      v6Only: null,
    });
  }
  return records;
}

function splitHexEndpoint(text: string, family: number, file: string, line: number): [Uint8Array, number] {
  const colon = text.indexOf(":");
  const hex = text.slice(0, colon);
  const words = family === AF_INET ? 1 : 4;
  if (colon < 0 || hex.length !== words * 8 || !/^[0-9A-Fa-f]+$/.test(hex)) {
    throw new DecodeError(`${file}:${line}: malformed address ${text}`);
  }
  const bytes = new Uint8Array(16);
  for (let w = 0; w < words; w++) {
    const word = parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    // Host order is little-endian on every target: the least significant byte comes first.
    bytes[w * 4] = word & 0xff;
    bytes[w * 4 + 1] = (word >>> 8) & 0xff;
    bytes[w * 4 + 2] = (word >>> 16) & 0xff;
    bytes[w * 4 + 3] = (word >>> 24) & 0xff;
  }
  const port = parseInt(text.slice(colon + 1), 16);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new DecodeError(`${file}:${line}: malformed port in ${text}`);
  return [bytes, port];
}

export class ProcNetSource implements DiagSource {
  constructor(private readonly procRoot = "/proc") {}

  dump(family: number, protocol: number, sink: RecordSink): DumpResult {
    const name = `${protocol === IPPROTO_TCP ? "tcp" : "udp"}${family === AF_INET6 ? "6" : ""}`;
    const file = `${this.procRoot}/net/${name}`;
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      // A kernel built without IPv6 has no tcp6/udp6: nothing to list for that family.
      return { count: 0, interrupted: false };
    }
    const records = parseProcNet(text, family, file);
    for (const r of records) sink(r);
    return { count: records.length, interrupted: false };
  }

  close(): void {}
}
