/**
 * Columns measured in terminal cells: a CJK process name takes two cells a character, an emoji
 * two (a joined one, several code points, still two), a combining mark none. Measured in UTF-16
 * units instead, such a name shifts every column after it, and a cut row overruns the terminal.
 */
import { describe, expect, test } from "vitest";
import { displayWidth, elideToWidth, fitToWidth, padToWidth } from "../../src/view/display-width.ts";
import { renderTable } from "../../src/view/text-table.ts";
import { renderEndpointTable } from "../../src/view/endpoint-table.ts";
import { numericNames } from "../../src/view/endpoint-names.ts";
import { renderProcessProperties } from "../../src/view/process-properties.ts";
import type { ProcessDetails } from "../../src/model/process.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const CJK = "火狐浏览器"; // 5 characters, 10 cells
const CODER = "👩\u200d💻dev"; // woman, joiner, laptop: 8 units, 5 cells
const ACCENTED = "cafe\u0301"; // e and a combining acute: 5 units, 4 cells

/** Where each row's `n`th cell starts, in cells: the same on every line when the columns line up. */
function starts(lines: string[], cell: string): number[] {
  return lines.map((line) => displayWidth(line.slice(0, line.indexOf(cell))));
}

describe("display width", () => {
  test("measures cells, not units", () => {
    expect([displayWidth(CJK), displayWidth(CODER), displayWidth(ACCENTED), displayWidth("nginx")]).toEqual([10, 5, 4, 5]);
  });

  test("pads, fits and elides by cells, never inside a joined emoji", () => {
    expect(padToWidth(CJK, 12)).toBe(`${CJK}  `);
    expect(padToWidth(ACCENTED, 6, "right")).toBe(`  ${ACCENTED}`);
    expect(fitToWidth(CJK, 5)).toBe("火狐 ");
    expect(elideToWidth(CJK + CJK, 9)).toBe("火狐…览器");
    const cut = elideToWidth(`👩\u200d💻👩\u200d💻👩\u200d💻👩\u200d💻`, 5);
    expect(cut).toBe(`👩\u200d💻…👩\u200d💻`);
  });

  test("a table's columns line up after a CJK, an emoji and an accented name", () => {
    const out = renderTable(
      [{ header: "Program" }, { header: "PID", align: "right" }, { header: "User" }],
      [[CJK, "1", "root"], [CODER, "22", "root"], [ACCENTED, "333", "root"], ["nginx", "4444", "root"]],
    );
    const lines = out.trimEnd().split("\n");
    expect(new Set(starts(lines, "root").slice(1))).toEqual(new Set([displayWidth(CJK) + 2 + 4 + 2]));
    expect(starts(lines, "User")[0]).toBe(displayWidth(CJK) + 2 + 4 + 2);
    expect(lines.map(displayWidth)).toEqual(Array(5).fill(displayWidth(CJK) + 2 + 4 + 2 + 4));
  });

  test("list's table keeps its columns and its width with such process names", () => {
    const rows = [CJK, CODER, "nginx"].map((name, i) =>
      endpoint({ localAddress: "10.0.0.1", localPort: 80 + i, remoteAddress: "10.0.0.2", remotePort: 5000 + i, inode: 10 + i, process: processInfo({ pid: 100 + i, name }), pids: [100 + i], user: "root" }),
    );
    const lines = renderEndpointTable(rows, { extended: true, names: numericNames() }).trimEnd().split("\n");
    expect(new Set(starts(lines.slice(1), "root")).size).toBe(1);
    expect(starts(lines, "User")[0]).toBe(starts(lines, "root")[1]);
    // Cut to a terminal's width, no row may be wider than it.
    const narrow = renderEndpointTable(rows.map((ep) => ({ ...ep, process: processInfo({ pid: 7, name: CJK + CJK + CODER }) })), { extended: false, names: numericNames(), width: 70 });
    for (const line of narrow.trimEnd().split("\n")) expect(displayWidth(line)).toBeLessThanOrEqual(70);
    expect(narrow).toContain("…");
  });

  test("a process's properties wrap a CJK command line within the width", () => {
    const details: ProcessDetails = {
      ...processInfo({ pid: 9, name: CJK, cmdline: `${CJK} --profile ${CJK}${CJK}${CJK} ${CODER}` }),
      ppidName: null, cgroup: null, unit: null, unitUid: null, state: null, threads: null, rssKiB: null, fdCount: null, netns: null,
    };
    const lines = renderProcessProperties(details, { width: 40 });
    for (const line of lines) expect(displayWidth(line)).toBeLessThanOrEqual(40);
    expect(lines.join("")).toContain(CODER);
  });
});
