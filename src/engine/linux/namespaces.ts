/**
 * Network namespaces in use on the machine: those named under /run/netns (`ip netns`) and those
 * any process lives in (/proc/PID/ns/net). Each is identified by the inode of its nsfs file.
 *
 * `inNamespace` runs a function with the calling thread switched into a namespace (setns) and
 * switches back. Sockets created meanwhile stay in that namespace for their whole life, which is
 * how one process can dump and close sockets of every namespace. Needs CAP_SYS_ADMIN.
 */
import fs from "node:fs";
import { libc } from "./libc.ts";
import { EPERM, syscallError } from "./errno.ts";
import { PrivilegeError } from "../../errors.ts";
import { CAP_SYS_ADMIN, hasCapability, userNamespaceNote } from "./capabilities.ts";

const CLONE_NEWNET = 0x40000000;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;

export interface NetNamespace {
  inode: number;
  /** Name under /run/netns, when it has one. */
  name: string | null;
  /** A file that refers to it, to enter it by. */
  path: string;
  /** PIDs of processes living in it (in ascending order). */
  pids: number[];
}

export function namespaceInodeOf(path: string): number | null {
  try {
    return fs.statSync(path).ino;
  } catch {
    return null;
  }
}

export function discoverNamespaces(procRoot = "/proc", runNetns = "/run/netns"): NetNamespace[] {
  const byInode = new Map<number, NetNamespace>();
  let named: string[] = [];
  try {
    named = fs.readdirSync(runNetns).sort();
  } catch {
    named = [];
  }
  for (const name of named) {
    const path = `${runNetns}/${name}`;
    const inode = namespaceInodeOf(path);
    if (inode !== null && !byInode.has(inode)) byInode.set(inode, { inode, name, path, pids: [] });
  }
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(procRoot);
  } catch {
    entries = [];
  }
  const pids = entries.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  for (const pid of pids) {
    const path = `${procRoot}/${pid}/ns/net`;
    const inode = namespaceInodeOf(path);
    if (inode === null) continue;
    const ns = byInode.get(inode);
    if (ns) ns.pids.push(pid);
    else byInode.set(inode, { inode, name: null, path, pids: [pid] });
  }
  return [...byInode.values()];
}

/**
 * Refuses `--all-namespaces` up front where other namespaces are out of reach. Without
 * CAP_SYS_ADMIN in the host's user namespace setns into them fails, and short of root
 * /proc/PID/ns/net of other users' processes cannot even be read: with no `ip netns` name in sight
 * the only namespace found is this one, and a listing of it would pass for every namespace.
 */
export function requireAllNamespacesAccess(): void {
  const elsewhere = userNamespaceNote();
  if (elsewhere === "" && hasCapability(CAP_SYS_ADMIN)) return;
  throw new PrivilegeError(
    `--all-namespaces: finding and entering other network namespaces needs CAP_SYS_ADMIN (run as root)${elsewhere}`,
  );
}

/**
 * A descriptor for the calling thread's own namespace, to come back to. Opened once, while the
 * thread is still at home.
 */
export function openHomeNamespace(): number {
  const c = libc();
  const fd = c.open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw syscallError("open(/proc/thread-self/ns/net)", c.errno());
  return fd;
}

/** Runs `fn` inside the namespace that `path` refers to, then returns to `homeFd`'s. */
export function inNamespace<T>(path: string, homeFd: number, fn: () => T): T {
  const c = libc();
  const target = c.open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) throw syscallError(`open(${path})`, c.errno());
  const back = homeFd;
  try {
    if (c.setns(target, CLONE_NEWNET) < 0) {
      const errno = c.errno();
      if (errno === EPERM) throw new PrivilegeError(`entering other network namespaces needs CAP_SYS_ADMIN (run as root)${userNamespaceNote()}`);
      throw syscallError("setns", errno);
    }
    try {
      return fn();
    } finally {
      // Failing to return would leave every later socket in the wrong namespace: that is fatal.
      if (c.setns(back, CLONE_NEWNET) < 0) throw syscallError("setns (return home)", c.errno());
    }
  } finally {
    c.close(target);
  }
}
