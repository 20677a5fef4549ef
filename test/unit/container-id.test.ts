import { describe, expect, test } from "vitest";
import { containerFromCgroup } from "../../src/engine/linux/container-id.ts";
import { placement } from "../../src/engine/linux/process-map.ts";

const ID = "0123456789abcdef".repeat(4);

describe("containers from cgroup paths", () => {
  test.each([
    [`/docker/${ID}`, { runtime: "docker", id: ID, pod: null }],
    [`/system.slice/docker-${ID}.scope`, { runtime: "docker", id: ID, pod: null }],
    [`/system.slice/containerd.service/kubepods-besteffort-pod12345678_1234_1234_1234_123456789abc.slice:cri-containerd:${ID}`, { runtime: "kubernetes", id: ID, pod: "12345678-1234-1234-1234-123456789abc" }],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12345678_1234_1234_1234_123456789abc.slice/cri-containerd-${ID}.scope`, { runtime: "kubernetes", id: ID, pod: "12345678-1234-1234-1234-123456789abc" }],
    [`/kubepods/burstable/pod12345678-1234-1234-1234-123456789abc/${ID}`, { runtime: "kubernetes", id: ID, pod: "12345678-1234-1234-1234-123456789abc" }],
    [`/machine.slice/libpod-${ID}.scope/container`, { runtime: "podman", id: ID, pod: null }],
    [`/system.slice/crio-${ID}.scope`, { runtime: "crio", id: ID, pod: null }],
    ["/lxc.payload.web1", { runtime: "lxc", id: "web1", pod: null }],
  ])("%s", (path, expected) => {
    expect(containerFromCgroup(path)).toEqual(expected);
  });

  test("paths that are not containers", () => {
    for (const p of ["/", "/system.slice/nginx.service", "/user.slice/user-1000.slice/session-3.scope", "/docker/notahexid"]) {
      expect(containerFromCgroup(p), p).toBeNull();
    }
  });

  test("a process's placement: unit from the unified line, container from the path", () => {
    expect(placement("0::/system.slice/nginx.service\n")).toEqual({ unit: "nginx.service", container: null });
    expect(placement(`12:memory:/docker/${ID}\n1:name=systemd:/docker/${ID}\n0::/\n`)).toEqual({ unit: null, container: { runtime: "docker", id: ID, pod: null } });
    expect(placement(`0::/system.slice/docker-${ID}.scope\n`)).toEqual({ unit: `docker-${ID}.scope`, container: { runtime: "docker", id: ID, pod: null } });
    expect(placement(null)).toEqual({ unit: null, container: null });
  });
});
