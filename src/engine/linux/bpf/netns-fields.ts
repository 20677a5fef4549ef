/**
 * Where a socket's network namespace inode lies, from the running kernel's BTF, for the
 * set-state program to read at each state change. The tracepoint names no namespace, and
 * addresses alone cannot tell apart two namespaces holding the same connection (containers made
 * from one image), nor which of two same-port listeners an accepted socket came from; the socket
 * itself knows: `sk->__sk_common.skc_net` points to its `struct net`, whose `ns.inum` is the inode
 * /proc/PID/ns/net shows.
 *
 * Reading it takes two bpf_probe_read_kernel calls: the pointer at `netPointer` bytes from the
 * socket's address, then `inumSize` bytes at `inum` bytes from that pointer.
 */
import type { Btf } from "./btf.ts";

export type NetnsFields =
  | { ok: true; netPointer: number; inum: number; inumSize: 4 }
  | { ok: false; reason: string };

const POINTER_BYTES = 8;

export function netnsFields(btf: Btf | null): NetnsFields {
  if (!btf) return { ok: false, reason: "the kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)" };
  const sock = btf.struct("sock");
  const common = btf.struct("sock_common");
  const net = btf.struct("net");
  const nsCommon = btf.struct("ns_common");
  if (!sock || !common || !net || !nsCommon) return { ok: false, reason: "the kernel's BTF lacks struct sock, sock_common, net or ns_common" };
  const head = btf.member(sock, "__sk_common");
  if (!head || head.bitOffset !== 0) return { ok: false, reason: "struct sock does not start with __sk_common" };
  // possible_net_t is a struct holding one pointer where the kernel has namespaces (CONFIG_NET_NS).
  const skcNet = btf.member(common, "skc_net");
  if (!skcNet || skcNet.size !== POINTER_BYTES || skcNet.bitfieldSize !== 0) {
    return { ok: false, reason: "sock_common.skc_net is not one pointer (a kernel without CONFIG_NET_NS has a single namespace)" };
  }
  const ns = btf.member(net, "ns");
  const inum = btf.member(nsCommon, "inum");
  if (!ns || !inum) return { ok: false, reason: "struct net has no ns.inum" };
  if (inum.size !== 4 || inum.bitfieldSize !== 0) return { ok: false, reason: `ns_common.inum is ${inum.size} bytes, expected 4` };
  return { ok: true, netPointer: skcNet.bitOffset / 8, inum: (ns.bitOffset + inum.bitOffset) / 8, inumSize: 4 };
}
