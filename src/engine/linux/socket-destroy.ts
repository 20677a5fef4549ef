/**
 * Closing a socket through sock_diag's SOCK_DESTROY (as `ss -K` does): the kernel aborts it, so
 * its owner's next read fails with ECONNABORTED and a TCP peer gets a reset. Needs
 * CAP_NET_ADMIN in the socket's network namespace and a kernel with CONFIG_INET_DIAG_DESTROY.
 */
import type { DestroyResult } from "../types.ts";
import type { Endpoint } from "../../model/endpoint.ts";
import { parseIP } from "../../net/address.ts";
import { NetlinkSocket } from "./netlink-socket.ts";
import {
  AF_INET,
  AF_INET6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NLM_F_ACK,
  NLM_F_REQUEST,
  SOCK_DESTROY,
  SOCK_DIAG_BY_FAMILY,
  ALL_STATES_MASK,
  decodeMessages,
  encodeDiagRequest,
  type DiagSocketId,
} from "./sock-diag-codec.ts";
import { EACCES, ENOENT, EOPNOTSUPP, EPERM, errnoName } from "./errno.ts";
import { userNamespaceNote } from "./capabilities.ts";

/** The socket id the kernel matches on, rebuilt from an endpoint as listed. */
export function socketIdOf(ep: Endpoint): DiagSocketId {
  const bytes = (text: string) => {
    const ip = parseIP(text);
    const out = new Uint8Array(16);
    if (ip) out.set(ip.bytes, 0);
    return out;
  };
  const cookie = ep.cookie === null ? 0n : BigInt(ep.cookie);
  return {
    sourcePort: ep.localPort,
    destinationPort: ep.remotePort,
    source: bytes(ep.localAddress),
    destination: bytes(ep.remoteAddress),
    interfaceIndex: ep.interfaceIndex,
    // Without a cookie (INET_DIAG_NOCOOKIE, all ones) the kernel matches on addresses alone.
    cookie: ep.cookie === null ? [0xffffffff, 0xffffffff] : [Number(cookie & 0xffffffffn), Number(cookie >> 32n)],
  };
}

export function destroySocket(ep: Endpoint): DestroyResult {
  const socket = new NetlinkSocket();
  try {
    // A socket listed with an owner whose owner has closed it since (or exited) is being taken
    // down by that owner. Its owner was not found when /proc was read just after the listing, so
    // a rule saw an unknown process; a reset now would only cut short what the owner closed.
    if (ep.protocol === "tcp" && ep.inode !== 0 && !stillHeld(socket, ep)) return { outcome: "gone" };
    sendRequest(socket, ep, SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, 1);
    // The answer is one acknowledgement: error 0 for done, or a negative errno.
    for (let i = 0; i < 16; i++) {
      for (const msg of decodeMessages(socket.receive(), SOCK_DESTROY)) {
        if (msg.kind !== "error" || msg.sequence !== 1) continue;
        if (msg.errno === 0) return { outcome: "closed" };
        if (msg.errno === ENOENT) return { outcome: "gone" };
        return { outcome: "failed", errno: msg.errno, reason: reasonFor(msg.errno) };
      }
    }
    return { outcome: "failed", errno: 0, reason: "the kernel did not acknowledge the request" };
  } finally {
    socket.close();
  }
}

/**
 * Whether a TCP socket is still held by a process (the inode it was listed with; one its owner
 * closed reports inode 0). True unless the kernel says so: if it is gone or another socket has
 * its addresses now, the close itself finds out, as it did before.
 */
function stillHeld(socket: NetlinkSocket, ep: Endpoint): boolean {
  sendRequest(socket, ep, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 2);
  for (let i = 0; i < 16; i++) {
    for (const msg of decodeMessages(socket.receive())) {
      if (msg.sequence !== 2) continue;
      if (msg.kind === "diag") return msg.record.inode === ep.inode;
      if (msg.kind === "error") return true;
    }
  }
  return true;
}

/** A request of `type` about the one socket `ep` names. */
function sendRequest(socket: NetlinkSocket, ep: Endpoint, type: number, flags: number, sequence: number): void {
  socket.send(
    encodeDiagRequest({
      type,
      flags,
      family: ep.family === 6 ? AF_INET6 : AF_INET,
      protocol: ep.protocol === "tcp" ? IPPROTO_TCP : IPPROTO_UDP,
      states: ALL_STATES_MASK,
      extensions: 0,
      sequence,
      id: socketIdOf(ep),
    }),
  );
}

function reasonFor(errno: number): string {
  if (errno === EPERM || errno === EACCES) return `closing a connection needs CAP_NET_ADMIN (run as root)${userNamespaceNote()}`;
  if (errno === EOPNOTSUPP) return "this kernel cannot close sockets (built without CONFIG_INET_DIAG_DESTROY)";
  return `the kernel refused: ${errnoName(errno)}`;
}
