/**
 * /proc/PID/status and /proc/PID/cgroup parsers from recorded file contents (cgroup v1, v2,
 * hybrid, containers), the systemd unit derived from a cgroup path, readProcessDetails on a
 * proc-shaped tree, and the properties rendering.
 */
import { afterAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  parseCgroupFile,
  parseNamespaceLink,
  parseStatus,
  readProcessDetails,
  selectCgroupPath,
  unescapeCgroupName,
  unitFromCgroup,
} from "../../src/engine/linux/process-details.ts";
import { UserTable } from "../../src/engine/linux/users.ts";
import type { ProcessDetails } from "../../src/model/process.ts";
import {
  durationText,
  processDetailsToJson,
  renderProcessProperties,
  wrap,
} from "../../src/view/process-properties.ts";
import { parsePid } from "../../src/cli/proc-command.ts";
import { usesPort } from "../../src/cli/port-command.ts";

const CONTAINER_ID = "3f6b1c0e9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b";

// Recorded from Debian 12 (kernel 6.1), an nginx worker.
const STATUS_NGINX = `Name:\tnginx
Umask:\t0022
State:\tS (sleeping)
Tgid:\t812
Ngid:\t0
Pid:\t812
PPid:\t811
TracerPid:\t0
Uid:\t33\t33\t33\t33
Gid:\t33\t33\t33\t33
FDSize:\t64
Groups:\t33
NStgid:\t812
NSpid:\t812
NSpgid:\t811
NSsid:\t811
VmPeak:\t   56276 kB
VmSize:\t   56012 kB
VmLck:\t       0 kB
VmPin:\t       0 kB
VmHWM:\t    6304 kB
VmRSS:\t    6088 kB
RssAnon:\t    1416 kB
RssFile:\t    4672 kB
RssShmem:\t       0 kB
Threads:\t1
SigQ:\t0/15429
voluntary_ctxt_switches:\t14
nonvoluntary_ctxt_switches:\t2
`;

// A kernel thread: no Vm* lines.
const STATUS_KTHREAD = `Name:\tkworker/0:1-events
Umask:\t0000
State:\tI (idle)
Tgid:\t27
Pid:\t27
PPid:\t2
TracerPid:\t0
Uid:\t0\t0\t0\t0
Gid:\t0\t0\t0\t0
FDSize:\t64
Groups:\t
Kthread:\t1
Threads:\t1
`;

describe("parseStatus", () => {
  it("reads state, parent, real uid, threads and resident memory", () => {
    expect(parseStatus(STATUS_NGINX)).toEqual({
      name: "nginx",
      state: "S (sleeping)",
      ppid: 811,
      uid: 33,
      threads: 1,
      rssKiB: 6088,
    });
  });

  it("gives null memory for a kernel thread and nulls for missing lines", () => {
    expect(parseStatus(STATUS_KTHREAD)).toMatchObject({ state: "I (idle)", ppid: 2, threads: 1, rssKiB: null });
    expect(parseStatus("")).toEqual({ name: null, state: null, ppid: null, uid: null, threads: null, rssKiB: null });
  });
});

// cgroup v2 only (Debian 12, Fedora, Ubuntu 22.04+).
const V2_NGINX = "0::/system.slice/nginx.service\n";
// cgroup v1 (legacy): the kernel still prints an unused v2 line with the root path.
const V1_NGINX = `12:pids:/system.slice/nginx.service
11:memory:/system.slice/nginx.service
10:cpu,cpuacct:/system.slice/nginx.service
9:blkio:/system.slice/nginx.service
8:devices:/system.slice/nginx.service
7:freezer:/
6:net_cls,net_prio:/
5:perf_event:/
4:hugetlb:/
3:cpuset:/
2:rdma:/
1:name=systemd:/system.slice/nginx.service
0::/
`;
// Hybrid (Ubuntu 18.04-20.04): v1 controllers plus systemd's unified hierarchy.
const HYBRID_SESSION = `12:pids:/user.slice/user-1000.slice/session-3.scope
5:memory:/user.slice/user-1000.slice/session-3.scope
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-3.scope
0::/user.slice/user-1000.slice/session-3.scope
`;
// Docker with the cgroupfs driver on v1: no systemd unit.
const V1_DOCKER = `12:pids:/docker/${CONTAINER_ID}
11:memory:/docker/${CONTAINER_ID}
3:cpu,cpuacct:/docker/${CONTAINER_ID}
1:name=systemd:/docker/${CONTAINER_ID}
0::/
`;
// v1 without systemd: only controllers place the process.
const V1_NO_SYSTEMD = `9:name=systemd:/
8:pids:/
4:memory:/jobs/4e1a
1:cpu:/
0::/
`;
// Kubernetes (systemd cgroup driver) with containerd on v2.
const V2_K8S = `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a.slice/cri-containerd-${CONTAINER_ID}.scope\n`;
// Kubelet's cgroupfs naming under containerd's service: the path itself holds colons.
const V2_COLONS = `0::/system.slice/containerd.service/kubepods-burstable-pod12.slice:cri-containerd:${CONTAINER_ID}\n`;

describe("parseCgroupFile", () => {
  it("splits hierarchy, controllers and path, keeping colons inside the path", () => {
    expect(parseCgroupFile(V2_COLONS)).toEqual([
      {
        hierarchy: 0,
        controllers: "",
        path: `/system.slice/containerd.service/kubepods-burstable-pod12.slice:cri-containerd:${CONTAINER_ID}`,
      },
    ]);
    expect(parseCgroupFile(V1_NGINX)).toHaveLength(13);
    expect(parseCgroupFile(V1_NGINX)[2]).toEqual({ hierarchy: 10, controllers: "cpu,cpuacct", path: "/system.slice/nginx.service" });
  });

  it("skips malformed lines", () => {
    expect(parseCgroupFile("garbage\n:x:/a\nx:y:/b\n0::/ok\n")).toEqual([{ hierarchy: 0, controllers: "", path: "/ok" }]);
  });
});

describe("selectCgroupPath", () => {
  it.each([
    ["v2", V2_NGINX, "/system.slice/nginx.service"],
    ["v1: name=systemd over the unused root v2 line", V1_NGINX, "/system.slice/nginx.service"],
    ["hybrid: the unified line", HYBRID_SESSION, "/user.slice/user-1000.slice/session-3.scope"],
    ["docker on v1", V1_DOCKER, `/docker/${CONTAINER_ID}`],
    ["v1 without systemd: the first placed controller", V1_NO_SYSTEMD, "/jobs/4e1a"],
    ["kubernetes on v2", V2_K8S, V2_K8S.slice(3, -1)],
    ["a container's own view (cgroup namespace)", "0::/\n", "/"],
    ["v1 with every hierarchy at the root", "2:cpu:/\n1:name=systemd:/\n", "/"],
  ])("%s", (_what, text, expected) => {
    expect(selectCgroupPath(text)).toBe(expected);
  });

  it("is null for an empty file", () => {
    expect(selectCgroupPath("")).toBeNull();
  });
});

describe("unitFromCgroup", () => {
  it.each([
    ["/system.slice/nginx.service", "nginx.service", null],
    ["/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service", null],
    ["/init.scope", "init.scope", null],
    ["/user.slice/user-1000.slice/session-3.scope", "session-3.scope", null],
    ["/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service", "syncthing.service", 1000],
    [
      "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-4f2a.scope",
      "vte-spawn-4f2a.scope",
      1000,
    ],
    // The user manager itself.
    ["/user.slice/user-1000.slice/user@1000.service/init.scope", "user@1000.service", null],
    ["/user.slice/user-1000.slice/user@1000.service", "user@1000.service", null],
    // Deeper cgroups (delegated subtrees) belong to the unit above them.
    ["/system.slice/docker.service/sub/worker", "docker.service", null],
    [`/system.slice/docker-${CONTAINER_ID}.scope`, `docker-${CONTAINER_ID}.scope`, null],
    [V2_K8S.slice(3, -1), `cri-containerd-${CONTAINER_ID}.scope`, null],
    [`/system.slice/containerd.service/kubepods-burstable-pod12.slice:cri-containerd:${CONTAINER_ID}`, "containerd.service", null],
    ["/system.slice/_weird.service", "weird.service", null],
  ])("%s -> %s", (cgroup, unit, uid) => {
    expect(unitFromCgroup(cgroup)).toEqual({ unit, uid });
  });

  it.each([
    "/",
    "/system.slice",
    "/user.slice/user-1000.slice",
    `/docker/${CONTAINER_ID}`,
    `/kubepods/burstable/pod0f1e2d3c-4b5a/${CONTAINER_ID}`,
    "/lxc.payload.web1/init.scope",
    "/jobs/4e1a",
    "",
  ])("%s is not a systemd unit", (cgroup) => {
    expect(unitFromCgroup(cgroup)).toBeNull();
  });

  it("unescapes names systemd prefixed with _", () => {
    expect(unescapeCgroupName("_cpu.service")).toBe("cpu.service");
    expect(unescapeCgroupName("nginx.service")).toBe("nginx.service");
  });
});

describe("parseNamespaceLink", () => {
  it("reads the inode of a namespace link", () => {
    expect(parseNamespaceLink("net:[4026531840]")).toBe(4026531840);
    expect(parseNamespaceLink("/dev/null")).toBeNull();
  });
});

describe("readProcessDetails", () => {
  // A directory shaped like /proc: one process (812) whose parent (811) is also there.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sw-details-"));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  const passwd = path.join(root, "passwd");
  fs.writeFileSync(passwd, "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n");
  fs.writeFileSync(path.join(root, "stat"), "cpu  1 2 3\nbtime 1700000000\n");
  const dir = path.join(root, "812");
  fs.mkdirSync(path.join(dir, "fd"), { recursive: true });
  fs.mkdirSync(path.join(dir, "ns"));
  fs.writeFileSync(path.join(dir, "stat"), "812 (nginx) S 811 811 811 0 -1 4194624 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0\n");
  fs.writeFileSync(path.join(dir, "comm"), "nginx\n");
  fs.writeFileSync(path.join(dir, "cmdline"), "nginx: worker process\0\0\0");
  fs.writeFileSync(path.join(dir, "status"), STATUS_NGINX);
  fs.writeFileSync(path.join(dir, "cgroup"), V1_NGINX);
  for (const fd of ["0", "1", "2", "6", "7"]) fs.symlinkSync("/dev/null", path.join(dir, "fd", fd));
  fs.symlinkSync("net:[4026531840]", path.join(dir, "ns", "net"));
  fs.mkdirSync(path.join(root, "811"));
  fs.writeFileSync(path.join(root, "811", "comm"), "nginx-master\n");
  // 900 exited between reading stat and status.
  fs.mkdirSync(path.join(root, "900"));
  fs.writeFileSync(path.join(root, "900", "stat"), "900 (gone) Z 1 900 900 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0\n");

  it("joins stat, status, cgroup, fd and namespace facts", () => {
    const d = readProcessDetails(812, root, { users: new UserTable(passwd), clockTicks: 100 });
    expect(d).not.toBeNull();
    expect(d).toEqual({
      pid: 812,
      name: "nginx",
      path: null, // no exe link in the fake tree
      cmdline: "nginx: worker process",
      uid: d!.uid, // the fake tree's owner: checked below
      user: d!.user,
      startTime: new Date(1700000000_000 + 50_000).toISOString(),
      startId: "5000",
      ppid: 811,
      ppidName: "nginx-master",
      cgroup: "/system.slice/nginx.service",
      unit: "nginx.service",
      container: null,
      unitUid: null,
      state: "S (sleeping)",
      threads: 1,
      rssKiB: 6088,
      fdCount: 5,
      netns: 4026531840,
    } satisfies ProcessDetails);
    expect(d!.uid).toBe(fs.statSync(dir).uid);
  });

  it("gives null for a process that does not exist or has just exited", () => {
    expect(readProcessDetails(4242, root)).toBeNull();
    expect(readProcessDetails(900, root)).toBeNull();
    expect(readProcessDetails(0, root)).toBeNull();
    expect(readProcessDetails(-1, root)).toBeNull();
  });

  it("reads the running test process from the real /proc", () => {
    const d = readProcessDetails(process.pid)!;
    expect(d.pid).toBe(process.pid);
    expect(d.ppid).toBe(process.ppid);
    expect(d.path).toBe(fs.readlinkSync("/proc/self/exe"));
    expect(d.threads).toBeGreaterThanOrEqual(1);
    expect(d.fdCount).toBeGreaterThanOrEqual(3);
    expect(d.rssKiB).toBeGreaterThan(0);
    expect(d.netns).toBe(parseNamespaceLink(fs.readlinkSync("/proc/self/ns/net")));
    expect(d.cgroup).toMatch(/^\//);
  });
});

const SAMPLE: ProcessDetails = {
  pid: 812,
  name: "nginx",
  path: "/usr/sbin/nginx",
  cmdline: "nginx: worker process",
  uid: 33,
  user: "www-data",
  startTime: "2026-01-02T03:04:05.000Z",
  ppid: 811,
  ppidName: "nginx",
  cgroup: "/system.slice/nginx.service",
  unit: "nginx.service",
  unitUid: null,
  state: "S (sleeping)",
  threads: 1,
  rssKiB: 6088,
  fdCount: 17,
  netns: 4026531840,
};

describe("renderProcessProperties", () => {
  it("aligns every value after the longest label", () => {
    const now = Date.parse(SAMPLE.startTime!) + 3 * 3600_000 + 2 * 60_000 + 9_000;
    expect(renderProcessProperties(SAMPLE, { now })).toEqual([
      "PID:          812",
      "Name:         nginx",
      "Path:         /usr/sbin/nginx",
      "Command line: nginx: worker process",
      "User:         www-data (uid 33)",
      "Started:      2026-01-02T03:04:05.000Z (3h 2m ago)",
      "Parent:       811 (nginx)",
      "Unit:         nginx.service",
      "Cgroup:       /system.slice/nginx.service",
      "State:        S (sleeping)",
      "Threads:      1",
      "Memory:       5.9 MiB resident",
      "Open files:   17",
    ]);
  });

  it("shows unknown values as -, user units with their uid, and no age without a clock", () => {
    const lines = renderProcessProperties({
      ...SAMPLE,
      path: null,
      cmdline: "",
      uid: 1000,
      user: "1000",
      ppid: 0,
      unit: "syncthing.service",
      unitUid: 1000,
      rssKiB: null,
      fdCount: null,
    });
    expect(lines).toContain("Path:         -");
    expect(lines).toContain("Command line: (none)");
    expect(lines).toContain("User:         uid 1000");
    expect(lines).toContain("Started:      2026-01-02T03:04:05.000Z");
    expect(lines).toContain("Parent:       -");
    expect(lines).toContain("Unit:         syncthing.service (user unit of uid 1000)");
    expect(lines).toContain("Memory:       -");
    expect(lines).toContain("Open files:   -");
  });

  it("wraps long values under the value column to fit the width", () => {
    const cmdline = "/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory /srv/some/long/path 8080";
    const lines = renderProcessProperties({ ...SAMPLE, cmdline }, { width: 40 });
    const start = lines.findIndex((l) => l.startsWith("Command line:"));
    const wrapped = [lines[start]!];
    for (let i = start + 1; lines[i]!.startsWith(" "); i++) wrapped.push(lines[i]!);
    expect(wrapped.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(40);
    for (const line of wrapped.slice(1)) expect(line.startsWith(" ".repeat(14))).toBe(true);
    expect(wrapped.map((l) => l.slice(14)).join(" ")).toBe(cmdline);
  });

  it("never lets a command line break lines or reach the terminal raw", () => {
    const lines = renderProcessProperties({ ...SAMPLE, cmdline: "python3 -c import os\nos.system('x')\x1b[2J" });
    expect(lines).toContain("Command line: python3 -c import os\\x0aos.system('x')\\x1b[2J");
    expect(lines.every((l) => !/[\x00-\x1f]/.test(l))).toBe(true);
  });
});

describe("rendering helpers", () => {
  it("durationText keeps two units and drops a zero second one", () => {
    expect(durationText(0)).toBe("0s");
    expect(durationText(42_000)).toBe("42s");
    expect(durationText(3_720_000)).toBe("1h 2m");
    expect(durationText(3_600_000)).toBe("1h");
    expect(durationText(90_000_000)).toBe("1d 1h");
    expect(durationText(-5_000)).toBe("0s");
  });

  it("wrap breaks at spaces, or inside a word too long for a line", () => {
    expect(wrap("aaa bbb ccc", 7)).toEqual(["aaa bbb", "ccc"]);
    expect(wrap("abcdefghij", 4)).toEqual(["abcd", "efgh", "ij"]);
    expect(wrap("short", Infinity)).toEqual(["short"]);
  });

  it("wrap never cuts an escape in two", () => {
    expect(wrap("abc\\x1bdef", 4)).toEqual(["abc", "\\x1b", "def"]);
    expect(wrap("a\\\\x1b", 2)).toEqual(["a", "\\\\", "x1", "b"]);
  });

  it("processDetailsToJson keeps every field", () => {
    expect(Object.keys(processDetailsToJson(SAMPLE)).sort()).toEqual(Object.keys(SAMPLE).sort());
  });
});

describe("command arguments", () => {
  it("parsePid accepts process IDs and refuses anything else with a usage error", () => {
    expect(parsePid("1")).toBe(1);
    expect(parsePid(" 4321 ")).toBe(4321);
    for (const bad of ["0", "-1", "abc", "12x", "", "4194305", "1e3"]) {
      expect(() => parsePid(bad), bad).toThrow(expect.objectContaining({ name: "UsageError", exitCode: 2 }));
    }
  });

  it("a port is used by endpoints bound or connected to it; remote port 0 means unconnected", () => {
    const ep = (localPort: number, remotePort: number) => ({ localPort, remotePort }) as Parameters<typeof usesPort>[0];
    expect(usesPort(ep(25, 0), 25)).toBe(true);
    expect(usesPort(ep(40000, 25), 25)).toBe(true);
    expect(usesPort(ep(40000, 26), 25)).toBe(false);
    expect(usesPort(ep(40000, 0), 0)).toBe(false);
    expect(usesPort(ep(0, 0), 0)).toBe(true);
  });
});
