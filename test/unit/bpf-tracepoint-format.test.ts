/**
 * Reading sock:inet_sock_set_state's layout from its tracefs format file, for both layouts the
 * kernel has had, and finding (or mounting, then unmounting) tracefs, on a fake file system.
 */
import { describe, expect, test } from "vitest";
import {
  TracefsUnavailableError,
  TracepointFormatError,
  TracepointMissingError,
  parseMountInfo,
  parseTracepointFormat,
  readSetStateTracepoint,
  setStateLayout,
  tracefsCandidates,
  type TracefsHost,
} from "../../src/engine/linux/bpf/tracepoint-format.ts";
import { FORMAT_6_18, FORMAT_BEFORE_5_6 } from "../fixtures/bpf/set-state-formats.ts";

describe("parseTracepointFormat", () => {
  test("reads name, id and every field with type, offset, size, sign and array length", () => {
    const format = parseTracepointFormat(FORMAT_6_18);
    expect(format.name).toBe("inet_sock_set_state");
    expect(format.id).toBe(2287);
    expect(format.fields.size).toBe(15);
    expect(format.fields.get("skaddr")).toEqual({ type: "const void *", name: "skaddr", offset: 8, size: 8, signed: false, arrayLength: null });
    expect(format.fields.get("oldstate")).toEqual({ type: "int", name: "oldstate", offset: 16, size: 4, signed: true, arrayLength: null });
    expect(format.fields.get("saddr_v6")).toEqual({ type: "__u8", name: "saddr_v6", offset: 40, size: 16, signed: false, arrayLength: 16 });
    expect(format.fields.get("common_pid")?.offset).toBe(4);
  });

  test("a text without name or ID is refused", () => {
    expect(() => parseTracepointFormat("format:\n\tfield:int x;\toffset:8;\tsize:4;\tsigned:1;\n")).toThrow(TracepointFormatError);
  });

  test("a field line without a sign (older kernels) is read as unsigned", () => {
    const format = parseTracepointFormat("name: t\nID: 1\n\tfield:int x;\toffset:8;\tsize:4;\n");
    expect(format.fields.get("x")).toMatchObject({ offset: 8, size: 4, signed: false });
  });
});

describe("setStateLayout", () => {
  test("since 5.6: protocol is a u16 at 30 and the addresses start at 32", () => {
    expect(setStateLayout(parseTracepointFormat(FORMAT_6_18))).toEqual({
      skaddr: { offset: 8, size: 8 },
      oldstate: { offset: 16, size: 4 },
      newstate: { offset: 20, size: 4 },
      sport: { offset: 24, size: 2 },
      dport: { offset: 26, size: 2 },
      family: { offset: 28, size: 2 },
      protocol: { offset: 30, size: 2 },
      saddr: { offset: 32, size: 4 },
      daddr: { offset: 36, size: 4 },
      saddrV6: { offset: 40, size: 16 },
      daddrV6: { offset: 56, size: 16 },
    });
  });

  test("before 5.6: protocol is a u8 at 30 and every address one byte earlier", () => {
    expect(setStateLayout(parseTracepointFormat(FORMAT_BEFORE_5_6))).toMatchObject({
      protocol: { offset: 30, size: 1 },
      saddr: { offset: 31, size: 4 },
      daddr: { offset: 35, size: 4 },
      saddrV6: { offset: 39, size: 16 },
      daddrV6: { offset: 55, size: 16 },
    });
  });

  test("a missing field, a field of another width, a field in the common header, another tracepoint: refused", () => {
    const without = FORMAT_6_18.replace(/^.*daddr_v6.*$/m, "");
    expect(() => setStateLayout(parseTracepointFormat(without))).toThrow(/has no field "daddr_v6"/);
    const narrowPointer = FORMAT_6_18.replace("skaddr;\toffset:8;\tsize:8;", "skaddr;\toffset:8;\tsize:4;");
    expect(() => setStateLayout(parseTracepointFormat(narrowPointer))).toThrow(/"skaddr" is 4 bytes, expected 8/);
    const inHeader = FORMAT_6_18.replace("oldstate;\toffset:16;", "oldstate;\toffset:4;");
    expect(() => setStateLayout(parseTracepointFormat(inHeader))).toThrow(/"oldstate" at offset 4 cannot be read/);
    expect(() => setStateLayout(parseTracepointFormat(FORMAT_6_18.replace("name: inet_sock_set_state", "name: tcp_probe")))).toThrow(/not inet_sock_set_state/);
  });
});

describe("finding tracefs", () => {
  const MOUNTINFO = [
    "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw",
    "23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
    "40 23 0:12 / /sys/kernel/debug rw,nosuid,nodev,noexec,relatime shared:16 - debugfs debugfs rw",
    "41 22 0:13 / /srv/trace\\040dir rw,relatime - tracefs nodev rw",
  ].join("\n");

  test("mountinfo: mount points (escapes undone) and types, with or without optional fields", () => {
    expect(parseMountInfo(MOUNTINFO)).toEqual([
      { mountPoint: "/", fsType: "ext4" },
      { mountPoint: "/sys", fsType: "sysfs" },
      { mountPoint: "/sys/kernel/debug", fsType: "debugfs" },
      { mountPoint: "/srv/trace dir", fsType: "tracefs" },
    ]);
  });

  test("tracefs mounts first, then tracing under each debugfs", () => {
    expect(tracefsCandidates(MOUNTINFO)).toEqual(["/srv/trace dir", "/sys/kernel/debug/tracing"]);
  });

  /** A file system of the given files; mount on /sys/kernel/tracing shows `tracefsFiles` there. */
  function fakeHost(options: {
    files?: Record<string, string>;
    tracefsFiles?: Record<string, string>;
    mountErrno?: number;
    unmountErrno?: number;
  }) {
    const files = new Map(Object.entries(options.files ?? {}));
    const calls: string[] = [];
    const host: TracefsHost = {
      readFile(file) {
        const text = files.get(file);
        if (text === undefined) throw new Error(`ENOENT: ${file}`);
        return text;
      },
      exists: (file) => files.has(file) || [...files.keys()].some((f) => f.startsWith(`${file}/`)),
      mountTracefs(target) {
        calls.push(`mount ${target}`);
        if (options.mountErrno) return options.mountErrno;
        for (const [name, text] of Object.entries(options.tracefsFiles ?? {})) files.set(`${target}/${name}`, text);
        return 0;
      },
      unmount(target) {
        calls.push(`umount ${target}`);
        if (options.unmountErrno) return options.unmountErrno;
        for (const name of [...files.keys()]) if (name.startsWith(`${target}/`)) files.delete(name);
        files.set(`${target}/.mountpoint`, "");
        return 0;
      },
      errnoName: (e) => ({ 1: "EPERM", 16: "EBUSY", 19: "ENODEV" })[e] ?? `errno ${e}`,
    };
    return { host, calls, files };
  }

  const EVENT = "events/sock/inet_sock_set_state";
  const eventFiles = (format: string, id = "2287\n") => ({ [`${EVENT}/format`]: format, [`${EVENT}/id`]: id });
  const under = (root: string, entries: Record<string, string>) =>
    Object.fromEntries(Object.entries(entries).map(([k, v]) => [`${root}/${k}`, v]));

  test("a mounted tracefs is read where mountinfo says, and nothing is mounted", () => {
    const { host, calls } = fakeHost({
      files: { "/proc/self/mountinfo": "41 22 0:13 / /srv/t rw - tracefs nodev rw\n", ...under("/srv/t", eventFiles(FORMAT_6_18)) },
    });
    const found = readSetStateTracepoint(host);
    expect(found).toMatchObject({ id: 2287, tracefs: "/srv/t", mountNote: null });
    expect(found.layout.protocol).toEqual({ offset: 30, size: 2 });
    expect(calls).toEqual([]);
  });

  test("tracing under a mounted debugfs is used as it is", () => {
    const { host, calls } = fakeHost({
      files: {
        "/proc/self/mountinfo": "40 23 0:12 / /sys/kernel/debug rw - debugfs debugfs rw\n",
        ...under("/sys/kernel/debug/tracing", eventFiles(FORMAT_BEFORE_5_6, "1372\n")),
      },
    });
    expect(readSetStateTracepoint(host)).toMatchObject({ id: 1372, tracefs: "/sys/kernel/debug/tracing", mountNote: null });
    expect(calls).toEqual([]);
  });

  test("no tracefs anywhere: mounted on /sys/kernel/tracing, read, unmounted, and the note says so", () => {
    const { host, calls } = fakeHost({
      files: { "/proc/self/mountinfo": "", "/sys/kernel/tracing/.mountpoint": "" },
      tracefsFiles: eventFiles(FORMAT_6_18),
    });
    const found = readSetStateTracepoint(host);
    expect(found).toMatchObject({ id: 2287, tracefs: "/sys/kernel/tracing" });
    expect(found.mountNote).toBe("mounted tracefs on /sys/kernel/tracing to read the tracepoint's layout, then unmounted it");
    expect(calls).toEqual(["mount /sys/kernel/tracing", "umount /sys/kernel/tracing"]);
  });

  test("an unmount that fails leaves it mounted, and the note says that instead", () => {
    const { host } = fakeHost({
      files: { "/proc/self/mountinfo": "", "/sys/kernel/tracing/.mountpoint": "" },
      tracefsFiles: eventFiles(FORMAT_6_18),
      unmountErrno: 16,
    });
    expect(readSetStateTracepoint(host).mountNote).toBe(
      "mounted tracefs on /sys/kernel/tracing to read the tracepoint's layout; unmounting it failed (EBUSY), so it stays mounted",
    );
  });

  test("a mount that fails, or no place to mount: TracefsUnavailableError naming the errno", () => {
    const refused = fakeHost({ files: { "/proc/self/mountinfo": "", "/sys/kernel/tracing/.mountpoint": "" }, mountErrno: 1 });
    expect(() => readSetStateTracepoint(refused.host)).toThrow(TracefsUnavailableError);
    expect(() => readSetStateTracepoint(refused.host)).toThrow("tracefs is not mounted and mounting it on /sys/kernel/tracing failed: EPERM");
    const nowhere = fakeHost({ files: { "/proc/self/mountinfo": "" } });
    expect(() => readSetStateTracepoint(nowhere.host)).toThrow(/\/sys\/kernel\/tracing does not exist/);
  });

  test("tracefs without the tracepoint (before 4.16): TracepointMissingError; a mount made for it is undone", () => {
    const mounted = fakeHost({ files: { "/proc/self/mountinfo": "41 22 0:13 / /srv/t rw - tracefs nodev rw\n", "/srv/t/events/sched/x/format": "" } });
    expect(() => readSetStateTracepoint(mounted.host)).toThrow(TracepointMissingError);
    const fresh = fakeHost({
      files: { "/proc/self/mountinfo": "", "/sys/kernel/tracing/.mountpoint": "" },
      tracefsFiles: { "events/sched/x/format": "" },
    });
    expect(() => readSetStateTracepoint(fresh.host)).toThrow(/needs Linux 4\.16 or later/);
    expect(fresh.calls).toEqual(["mount /sys/kernel/tracing", "umount /sys/kernel/tracing"]);
  });

  test("an id file that disagrees with the format's ID is refused", () => {
    const { host } = fakeHost({
      files: { "/proc/self/mountinfo": "41 22 0:13 / /srv/t rw - tracefs nodev rw\n", ...under("/srv/t", eventFiles(FORMAT_6_18, "9\n")) },
    });
    expect(() => readSetStateTracepoint(host)).toThrow(/tracepoint id "9" does not match its format's ID 2287/);
  });
});
