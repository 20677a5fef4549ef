/**
 * The container a process belongs to, read from its cgroup path as the runtimes lay them out:
 *
 *   /docker/<64 hex>                                         docker (cgroupfs driver)
 *   /system.slice/docker-<64 hex>.scope                      docker (systemd driver)
 *   .../cri-containerd-<id>.scope, ...slice:cri-containerd:<id>   containerd (CRI)
 *   /machine.slice/libpod-<id>.scope, /libpod_parent/libpod-<id>        podman
 *   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
 *   /kubepods/burstable/pod<uid>/<id>                         kubernetes (with the runtime's id)
 *   /lxc.payload.<name>, /lxc/<name>                          lxc
 */
import type { ContainerInfo } from "../../model/process.ts";

const ID = "([0-9a-f]{12,64})";
const PATTERNS: { runtime: ContainerInfo["runtime"]; re: RegExp }[] = [
  { runtime: "docker", re: new RegExp(`(?:^|/)docker-${ID}\\.scope(?:/|$)`) },
  { runtime: "docker", re: new RegExp(`(?:^|/)docker/${ID}(?:/|$)`) },
  { runtime: "containerd", re: new RegExp(`(?:^|/)cri-containerd-${ID}\\.scope(?:/|$)`) },
  // containerd with the systemd driver but cgroupfs-style names: ...slice:cri-containerd:<id>
  { runtime: "containerd", re: new RegExp(`:cri-containerd:${ID}(?:/|$)`) },
  { runtime: "crio", re: new RegExp(`(?:^|/)crio-${ID}\\.scope(?:/|$)`) },
  { runtime: "podman", re: new RegExp(`(?:^|/)libpod-${ID}(?:\\.scope)?(?:/|$)`) },
];

export function containerFromCgroup(path: string): ContainerInfo | null {
  const pod = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/.exec(path)?.[1]?.replaceAll("_", "-") ?? null;
  for (const { runtime, re } of PATTERNS) {
    const m = re.exec(path);
    if (m) return { runtime: pod ? "kubernetes" : runtime, id: m[1]!, pod };
  }
  if (pod) {
    // cgroupfs kubelet layout: /kubepods/<qos>/pod<uid>/<container id>
    const tail = new RegExp(`pod[^/]+/${ID}(?:/|$)`).exec(path);
    return { runtime: "kubernetes", id: tail?.[1] ?? null, pod };
  }
  const lxc = /(?:^|\/)lxc(?:\.payload\.|\/)([^/]+)/.exec(path);
  if (lxc) return { runtime: "lxc", id: lxc[1]!, pod: null };
  return null;
}
