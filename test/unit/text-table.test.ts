import { describe, expect, test } from "vitest";
import { elide, renderTable } from "../../src/view/text-table.ts";
import { humanCount, renderEndpointTable } from "../../src/view/endpoint-table.ts";
import { friendlyNames, numericNames } from "../../src/view/endpoint-names.ts";
import { csvField, renderCsv } from "../../src/view/endpoint-csv.ts";
import type { Endpoint } from "../../src/engine/types.ts";

const ep: Endpoint = {
  protocol: "tcp", family: 6, localAddress: "2001:db8:1234:5678:9abc:def0:1234:5678", localPort: 443,
  remoteAddress: "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", remotePort: 51234, state: "ESTABLISHED", inode: 9,
  uid: 0, user: "root", interfaceIndex: 0, receiveQueue: 0, sendQueue: 0, bytesSent: 123456789, bytesReceived: 42,
  packetsSent: 10, packetsReceived: 11, rttMs: 1, cookie: "1",
  process: { pid: 77, name: "nginx", path: "/usr/sbin/nginx", cmdline: "nginx: worker", uid: 0, user: "www-data", startTime: null, ppid: 1 },
  pids: [77],
};

describe("text tables", () => {
  test("fits a width by shortening shrinkable columns in the middle", () => {
    const out = renderEndpointTable([ep], { extended: false, names: numericNames(), width: 80 });
    for (const line of out.trimEnd().split("\n")) expect(line.length).toBeLessThanOrEqual(80);
    expect(out).toContain("…");
    expect(out).toContain(":443"); // the port survives the cut
    expect(out).toContain("77/nginx");
  });

  test("without a width nothing is cut", () => {
    const out = renderEndpointTable([ep], { extended: true, names: numericNames() });
    expect(out).toContain("[2001:db8:1234:5678:9abc:def0:1234:5678]:443");
    expect(out).toContain("www-data");
    expect(out).toContain("/usr/sbin/nginx");
    expect(out).toContain("118M");
    expect(out.split("\n")[0]).toMatch(/^Proto\s+Local Address\s+Remote Address\s+State\s+PID\/Program\s+Unit\/Container\s+User\s+Sent\s+Recv/);
  });

  test("service names in friendly mode, * for an unconnected remote port", () => {
    const listener = { ...ep, family: 4 as const, localAddress: "0.0.0.0", localPort: 22, remoteAddress: "0.0.0.0", remotePort: 0, state: "LISTEN" as const };
    const out = renderEndpointTable([listener], { extended: false, names: friendlyNames(new Map()) });
    expect(out).toContain("0.0.0.0:ssh");
    expect(out).toContain("0.0.0.0:*");
    const named = renderEndpointTable([listener], { extended: false, names: friendlyNames(new Map([["0.0.0.0", "any"]])) });
    expect(named).toContain("any:ssh");
  });

  test("elide keeps both ends", () => {
    expect(elide("abcdefghij", 5)).toBe("ab…ij");
    expect(renderTable([{ header: "A" }, { header: "B", align: "right" }], [["x", "1"], ["yy", "22"]])).toBe("A    B\nx    1\nyy  22\n");
  });

  test("humanCount", () => {
    expect([humanCount(null), humanCount(9999), humanCount(10_240), humanCount(5 * 1024 ** 3)]).toEqual(["-", "9999", "10.0K", "5.0G"]);
  });
});

describe("CSV", () => {
  test("header, quoting, and one row per endpoint", () => {
    const out = renderCsv([ep, { ...ep, process: null, pids: [] }]);
    const lines = out.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]!.split(",")[0]).toBe("protocol");
    expect(lines[1]).toContain(",nginx,/usr/sbin/nginx,nginx: worker,");
    expect(csvField('a "b", c')).toBe('"a ""b"", c"');
    expect(csvField(null)).toBe("");
  });
});
