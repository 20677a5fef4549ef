/**
 * Raw dumps written by iproute2's `ss -D FILE`: the sock_diag reply messages of a TCP dump as the
 * kernel sent them, back to back (the IPv4 dump, NLMSG_DONE, the IPv6 dump, NLMSG_DONE), which ss
 * reads back through TCPDIAG_FILE. A box without sockwarden can record one with ss alone.
 *
 * ss dumps TCP only and its messages do not name their protocol, so every socket here is TCP.
 * ss's own replay stops at the first NLMSG_DONE and so never shows the IPv6 part of its dumps;
 * both parts are read here.
 */
import { DecodeError } from "../../errors.ts";
import type { DiagSource, DumpResult, RecordSink } from "./diag-source.ts";
import {
  IPPROTO_TCP,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  SOCK_DIAG_BY_FAMILY,
  visitMessages,
  type DiagRecord,
} from "./sock-diag-codec.ts";
import { errnoName } from "./errno.ts";

/**
 * Whether the bytes start like a netlink message of a sock_diag dump: a header whose length fits
 * the file and whose type is a diag reply, NLMSG_DONE or NLMSG_ERROR. A recording of
 * `--record` starts with `{"family"`, whose bytes 4 and 5 ("mi") are no such type.
 */
export function looksLikeSsDump(bytes: Uint8Array): boolean {
  if (bytes.byteLength < NLMSG_HDRLEN) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = view.getUint32(0, true);
  const type = view.getUint16(4, true);
  return len >= NLMSG_HDRLEN && len <= bytes.byteLength && (type === SOCK_DIAG_BY_FAMILY || type === NLMSG_DONE || type === NLMSG_ERROR);
}

export class SsDumpDiagSource implements DiagSource {
  private readonly byFamily = new Map<number, DiagRecord[]>();
  private interrupted = false;

  /** `label` names the file in errors. */
  constructor(bytes: Uint8Array, label: string) {
    try {
      visitMessages(bytes, {
        diag: (record, _sequence, flags) => {
          if (flags & NLM_F_DUMP_INTR) this.interrupted = true;
          const list = this.byFamily.get(record.family) ?? [];
          list.push({ ...record });
          this.byFamily.set(record.family, list);
        },
        done: (_sequence, flags) => {
          if (flags & NLM_F_DUMP_INTR) this.interrupted = true;
        },
        error: (errno) => {
          // ss writes what the kernel answered; a refused dump has no sockets to show.
          if (errno !== 0) throw new DecodeError(`${label}: the recorded dump failed: ${errnoName(errno)}`);
        },
        other: (type) => {
          throw new DecodeError(`${label}: netlink message of type ${type} in an ss -D dump, where only sock_diag replies belong`);
        },
      });
    } catch (err) {
      if (err instanceof DecodeError && !err.message.startsWith(`${label}:`)) {
        throw new DecodeError(`${label}: not a whole ss -D dump: ${err.message}`);
      }
      throw err;
    }
  }

  dump(family: number, protocol: number, sink: RecordSink): DumpResult {
    if (protocol !== IPPROTO_TCP) return { count: 0, interrupted: false };
    const records = this.byFamily.get(family) ?? [];
    for (const r of records) sink(r);
    return { count: records.length, interrupted: this.interrupted };
  }

  close(): void {}
}
