/**
 * Ties a child process's life to its parent's: PR_SET_PDEATHSIG makes the kernel send SIGKILL
 * when the parent thread goes, however it goes (SIGKILL included). A rule runner relies on this:
 * stuck in one native call, it reads nothing, so it would not notice that its pipe closed.
 */
import { libc } from "./libc.ts";

const PR_SET_PDEATHSIG = 1;
const SIGKILL = 9;

/** True when bound; false when the parent was gone before the binding took (the caller ends). */
export function bindLinuxChildToParent(parentPid: number): boolean {
  if (libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) !== 0) return true;
  // The parent may have gone between the start and the call: the child then has a new parent.
  return process.ppid === parentPid;
}
