/**
 * The socket's namespace inode place, from this machine's kernel BTF (skipped without one): the
 * pointer lies inside struct sock_common and the inode inside struct net, at the offsets their
 * members say; without BTF the reason names it.
 */
import fs from "node:fs";
import { describe, expect, test } from "vitest";
import { Btf } from "../../src/engine/linux/bpf/btf.ts";
import { netnsFields } from "../../src/engine/linux/bpf/netns-fields.ts";

const VMLINUX = "/sys/kernel/btf/vmlinux";

test("without BTF it says why", () => {
  const f = netnsFields(null);
  expect(f.ok).toBe(false);
  if (!f.ok) expect(f.reason).toMatch(/BTF/);
});

describe.runIf(fs.existsSync(VMLINUX))("this machine's kernel BTF", () => {
  test("skc_net's pointer and net.ns.inum", () => {
    const btf = Btf.readKernel(VMLINUX)!;
    const f = netnsFields(btf);
    expect(f.ok, JSON.stringify(f)).toBe(true);
    if (!f.ok) return;
    const common = btf.struct("sock_common")!;
    const net = btf.struct("net")!;
    expect(f.netPointer).toBe(btf.member(common, "skc_net")!.bitOffset / 8);
    expect(f.netPointer + 8).toBeLessThanOrEqual(common.sizeOrType);
    expect(f.inum + f.inumSize).toBeLessThanOrEqual(net.sizeOrType);
    expect(f.inum).toBe((btf.member(net, "ns")!.bitOffset + btf.member(btf.struct("ns_common")!, "inum")!.bitOffset) / 8);
  });
});
