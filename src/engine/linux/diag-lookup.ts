/**
 * One socket looked up by its addresses through sock_diag (a request with the socket id set and
 * no dump flag), so that a connection first seen through the sensor gets what only the kernel's
 * socket table has: cookie, inode, uid and counters. Costs one request and one reply.
 */
import { parseIP } from "../../net/address.ts";
import { NetlinkSocket } from "./netlink-socket.ts";
import {
  AF_INET,
  AF_INET6,
  ALL_STATES_MASK,
  INET_DIAG_INFO,
  IPPROTO_TCP,
  NLM_F_REQUEST,
  SOCK_DIAG_BY_FAMILY,
  encodeDiagRequest,
  visitMessages,
  type DiagRecord,
} from "./sock-diag-codec.ts";

/** INET_DIAG_NOCOOKIE: match on the addresses alone. */
const NO_COOKIE: [number, number] = [0xffffffff, 0xffffffff];

export interface TcpTuple {
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

function addressBytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  const ip = parseIP(text);
  if (ip) out.set(ip.bytes, 0);
  return out;
}

export interface DiagAnswer {
  /** The socket, or null when there is none (any more). */
  socket: DiagRecord | null;
  /**
   * With no such socket: a listener of this namespace would take a connection to its local
   * address and port (the kernel answers with that listener instead).
   */
  listener: boolean;
}

export class DiagLookup {
  private readonly socket: NetlinkSocket;
  private sequence = 1;

  /** `socket` is a test seam. */
  constructor(socket?: NetlinkSocket) {
    this.socket = socket ?? new NetlinkSocket();
  }

  /** The TCP socket with these addresses in this namespace. */
  tcp(tuple: TcpTuple): DiagAnswer {
    const seq = this.sequence++;
    this.socket.send(
      encodeDiagRequest({
        type: SOCK_DIAG_BY_FAMILY,
        flags: NLM_F_REQUEST,
        family: tuple.family === 6 ? AF_INET6 : AF_INET,
        protocol: IPPROTO_TCP,
        states: ALL_STATES_MASK,
        extensions: 1 << (INET_DIAG_INFO - 1),
        sequence: seq,
        id: {
          sourcePort: tuple.localPort,
          destinationPort: tuple.remotePort,
          source: addressBytes(tuple.localAddress),
          destination: addressBytes(tuple.remoteAddress),
          interfaceIndex: 0,
          cookie: NO_COOKIE,
        },
      }),
    );
    // The answer is one message: the socket, or an error (ENOENT when it is gone).
    let found: DiagRecord | null = null;
    let answered = false;
    for (let i = 0; i < 16 && !answered; i++) {
      visitMessages(this.socket.receive(), {
        diag: (record, sequence) => {
          if (sequence !== seq) return;
          found = { ...record };
          answered = true;
        },
        done: (sequence) => {
          if (sequence === seq) answered = true;
        },
        error: (_errno, sequence) => {
          if (sequence === seq) answered = true;
        },
      });
    }
    // Where no connection has the addresses the kernel answers with a listener on the local
    // port: that is another socket.
    const r = found as DiagRecord | null;
    if (r && (r.sourcePort !== tuple.localPort || r.destinationPort !== tuple.remotePort)) {
      return { socket: null, listener: r.sourcePort === tuple.localPort && r.destinationPort === 0 };
    }
    return { socket: r, listener: false };
  }

  close(): void {
    this.socket.close();
  }
}
