import { describe, expect, test } from "vitest";
import { renderTable } from "../../src/view/text-table.ts";
import { elideToWidth } from "../../src/view/display-width.ts";
import { byteCount, humanCount, packetCount, renderEndpointTable } from "../../src/view/endpoint-table.ts";
import { friendlyNames, numericNames } from "../../src/view/endpoint-names.ts";
import { csvField, renderCsv } from "../../src/view/endpoint-csv.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const ep = endpoint({
  family: 6, localAddress: "2001:db8:1234:5678:9abc:def0:1234:5678", localPort: 443, remoteAddress: "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff",
  remotePort: 51234, inode: 9, bytesSent: 123456789, bytesReceived: 42, packetsSent: 10, packetsReceived: 11,
  process: processInfo({ pid: 77, name: "nginx", path: "/usr/sbin/nginx", cmdline: "nginx: worker", user: "www-data" }), pids: [77],
});

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
    expect(out).toContain("118MiB");
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
    expect(elideToWidth("abcdefghij", 5)).toBe("ab…ij");
    expect(renderTable([{ header: "A" }, { header: "B", align: "right" }], [["x", "1"], ["yy", "22"]])).toBe("A    B\nx    1\nyy  22\n");
  });

  test("counts: bytes in binary units said as such, packets in thousands", () => {
    expect([humanCount(null), humanCount(9999), humanCount(10_240), humanCount(5 * 1024 ** 3)]).toEqual(["-", "9999", "10.0Ki", "5.0Gi"]);
    expect([byteCount(9999), byteCount(123_456), byteCount(5 * 1024 ** 3)]).toEqual(["9999", "121KiB", "5.0GiB"]);
    expect([packetCount(9999), packetCount(123_456), packetCount(12_345_678)]).toEqual(["9999", "123k", "12.3M"]);
    // Just under a step rounds up to the next unit, not to "1024KiB" or "1000k".
    expect([byteCount(1024 ** 2 - 1), packetCount(999_999)]).toEqual(["1.0MiB", "1.0M"]);
  });

  test("byte and packet columns stay right-aligned under their headers with units", () => {
    const rows = [
      { ...ep, bytesSent: 123_456, bytesReceived: 5, packetsSent: 123_456, packetsReceived: 7 },
      { ...ep, bytesSent: 42, bytesReceived: 5 * 1024 ** 3, packetsSent: 3, packetsReceived: 12_345_678 },
    ];
    const lines = renderEndpointTable(rows, { extended: true, names: numericNames() }).trimEnd().split("\n");
    const header = lines[0]!;
    // Each cell ends where its header ends.
    const end = (h: string) => header.indexOf(h) + h.length;
    const cellEnding = (line: string, at: number) => line.slice(0, at).split(/\s+/).pop();
    expect(lines.slice(1).map((l) => [end("Sent"), end("Recv"), end("PktOut"), end("PktIn")].map((at) => cellEnding(l, at)))).toEqual([
      ["121KiB", "5", "123k", "7"],
      ["42", "5.0GiB", "3", "12.3M"],
    ]);
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
