/** Every fuzz target, in the order the runner and the tests take them. */
import { NETLINK_TARGETS } from "./netlink.ts";
import { PROC_TARGETS } from "./proc.ts";
import { WINDOWS_TARGETS } from "./windows.ts";
import { TEXT_TARGETS } from "./text.ts";
import type { FuzzTarget } from "./target.ts";

export const ALL_TARGETS: readonly FuzzTarget<never>[] = [
  ...NETLINK_TARGETS,
  ...PROC_TARGETS,
  ...WINDOWS_TARGETS,
  ...TEXT_TARGETS,
] as FuzzTarget<never>[];

export function targetNamed(name: string): FuzzTarget<never> | undefined {
  return ALL_TARGETS.find((t) => t.name === name);
}
