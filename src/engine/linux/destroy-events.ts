/**
 * The kernel's socket-destroy notices (sock_diag multicast groups SKNLGRP_INET_TCP_DESTROY,
 * _INET_UDP_, _INET6_TCP_, _INET6_UDP_DESTROY = 1..4; the same mechanism as `ss -E`). Each notice
 * is an inet_diag_msg with the socket id, its cookie and final tcp_info; uid and inode are zero,
 * so a caller matches it by cookie to what it saw before. Subscribing needs no privilege.
 *
 * The socket is read without blocking: the monitor drains it on every refresh (and more often
 * while idle), so a connection that opened and closed between two polls is still reported.
 */
import { NetlinkSocket } from "./netlink-socket.ts";
import { visitMessages, type DiagRecord, SOCK_DIAG_BY_FAMILY } from "./sock-diag-codec.ts";
import { DecodeError } from "../../errors.ts";

// Group n is bit n-1: TCP v4 = 1, UDP v4 = 2, TCP v6 = 3, UDP v6 = 4. The message does not say
// which protocol it is about, so each protocol gets its own socket.
const GROUPS = { tcp: (1 << 0) | (1 << 2), udp: (1 << 1) | (1 << 3) } as const;

export class DestroyEventReader {
  private readonly socket: NetlinkSocket;
  /** Times the kernel dropped notices because the receive buffer was full (ENOBUFS). */
  overflows = 0;
  /** Datagrams that did not decode (cut short, or malformed); what they held is lost. */
  malformed = 0;

  /** `socket` is a test seam (a socket over injected system calls). */
  constructor(
    readonly protocol: "tcp" | "udp",
    socket?: NetlinkSocket,
  ) {
    this.socket = socket ?? new NetlinkSocket();
    this.socket.bindGroups(GROUPS[protocol]);
  }

  /** Everything queued now, copied; never blocks. Bounded so a storm cannot stall a refresh. */
  drain(max = 1_000_000): DiagRecord[] {
    const out: DiagRecord[] = [];
    for (let i = 0; i < 100_000 && out.length < max; i++) {
      const r = this.socket.receiveNonBlocking();
      if (r === "empty") break;
      if (r === "overflow") {
        // The kernel dropped notices: count it and keep reading what is still queued.
        this.overflows++;
        continue;
      }
      try {
        visitMessages(r, {
          diag: (record) => {
            out.push({ ...record });
          },
          done: () => {},
          error: () => {},
        }, SOCK_DIAG_BY_FAMILY);
      } catch (err) {
        // A datagram cut short loses what it held, not the notices read before or after it.
        if (!(err instanceof DecodeError)) throw err;
        this.malformed++;
      }
    }
    return out;
  }

  close(): void {
    this.socket.close();
  }
}
