/**
 * The process behind a socket, as every engine reports it: normalized records, no OS details.
 */

/** A container runtime's container, as named by a process's cgroup. */
export interface ContainerInfo {
  runtime: "docker" | "containerd" | "crio" | "podman" | "kubernetes" | "lxc";
  /** The runtime's container id (null when only the pod is known). */
  id: string | null;
  /** Kubernetes pod UID, when the process runs in a pod. */
  pod: string | null;
}

export interface ProcessInfo {
  pid: number;
  /** Short name as the kernel keeps it (comm). */
  name: string;
  /** Executable path; null when it cannot be read (another user's process, kernel thread). */
  path: string | null;
  cmdline: string | null;
  uid: number | null;
  user: string | null;
  /** ISO-8601 start time. */
  startTime: string | null;
  /**
   * When the process started, exactly, as the OS counts it: on Linux the clock ticks since boot
   * (/proc/PID/stat), on Windows the creation FILETIME. Compared for equality only, to tell
   * whether a PID still names this process; unlike startTime it is not rounded and does not move
   * when the wall clock is set.
   */
  startId?: string | null;
  ppid: number | null;
  /** The systemd unit the process runs in (`nginx.service`), from its cgroup. */
  unit?: string | null;
  /** The container the process runs in, from its cgroup. */
  container?: ContainerInfo | null;
}

/**
 * Everything `sockwarden proc` and the live view's properties panel show about one process: the
 * ProcessInfo fields plus what /proc/PID/{status,cgroup,fd} tell. Fields that cannot be read
 * (another user's process, a kernel thread) are null.
 */
export interface ProcessDetails extends ProcessInfo {
  /** Short name of the parent process; null for PID 1, kernel threads or a vanished parent. */
  ppidName: string | null;
  /** The process's cgroup path: the cgroup v2 one, else v1's name=systemd, else another v1 line. */
  cgroup: string | null;
  /** The systemd unit the cgroup path names (`nginx.service`, `session-3.scope`), or null. */
  unit: string | null;
  /** For a unit of a user's service manager (under user@UID.service): that UID; null otherwise. */
  unitUid: number | null;
  /** Scheduler state as the kernel writes it, e.g. `S (sleeping)`. */
  state: string | null;
  threads: number | null;
  /** Resident memory in KiB (VmRSS); null for kernel threads. */
  rssKiB: number | null;
  /** Number of open file descriptors; null when they cannot be read. */
  fdCount: number | null;
  /** Inode of the process's network namespace; null when it cannot be read. */
  netns: number | null;
}
