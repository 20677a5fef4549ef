import { describe, expect, test } from "vitest";
import { hiddenOwnerWarnings } from "../../src/daemon/hidden-owners.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const ep = (o: Partial<Endpoint>): Endpoint =>
  endpoint({ localPort: 40000, remotePort: 25, inode: 7, uid: 4242, user: null, packetsSent: 0, packetsReceived: 0, rttMs: null, process: null, pids: [], ...o });
const proc = processInfo({ pid: 9, name: "exim4" });
// Two hidden; not counted: TIME_WAIT (no inode), this user's own, and one whose process is known.
const endpoints = [ep({}), ep({ localPort: 25, remotePort: 40000 }), ep({ inode: 0, state: "TIME_WAIT" }), ep({ uid: 0 }), ep({ process: proc, pids: [9] })];
const files: Record<string, string> = {
  "/r/guard.ts": `defineRule({ name: "guard", handle(e, act) { if (e.endpoint.process?.name !== "exim4") act.close(e.endpoint, "no"); } })`,
  "/r/logger.ts": `defineRule({ name: "logger", handle(e, act) { act.log(e.endpoint.process?.name ?? "-"); } })`,
  "/r/by-port.ts": `defineRule({ name: "by-port", handle(e, act) { if (e.endpoint.remotePort === 23) act.close(e.endpoint, "telnet"); } })`,
};
const read = (p: string) => {
  if (!(p in files)) throw new Error("ENOENT");
  return files[p]!;
};
const warn = (rules: { name: string; label: string }[], unreadable = 3) => hiddenOwnerWarnings(rules, endpoints, unreadable, 0, read);
const REMEDY = "; give sockwarden CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH";

describe("rules told what hidden processes mean for them", () => {
  test("smtp-guard: the mail server's connections may be closed", () => {
    expect(warn([{ name: "smtp-guard", label: "plugin:smtp-guard" }])).toEqual([
      `smtp-guard: 2 sockets of other users show no process, so it cannot tell a mail server from another process and may close the mail server's connections${REMEDY}`,
    ]);
  });

  test("one line for each rule that goes by processes, none for the others", () => {
    const lines = warn([
      { name: "connection-flood", label: "plugin:connection-flood" },
      { name: "guard", label: "/r/guard.ts" },
      { name: "logger", label: "/r/logger.ts" },
      { name: "by-port", label: "/r/by-port.ts" },
      { name: "gone", label: "/r/gone.ts" },
    ]);
    expect(lines.map((l) => l.slice(0, l.indexOf(":")))).toEqual(["connection-flood", "guard", "gone"]);
    expect(lines[1]).toBe(`guard: 2 sockets of other users show no process, so where it goes by process name or PID it sees none there, and may close or end what it should leave alone${REMEDY}`);
  });

  test("nothing when every process could be read, or nothing is hidden", () => {
    const rules = [{ name: "smtp-guard", label: "plugin:smtp-guard" }];
    expect(warn(rules, 0)).toEqual([]);
    expect(hiddenOwnerWarnings(rules, [ep({ uid: 0 })], 3, 0, read)).toEqual([]);
    expect(hiddenOwnerWarnings(rules, [ep({})], 3, 0, read)[0]).toMatch(/^smtp-guard: 1 socket of other users shows no process, so /);
  });
});
