import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessDetails, ProcessInfo } from "../../src/model/process.ts";
import { LiveModel } from "../../src/view/live/model.ts";
import { intervalText, renderScreen, type RenderOptions } from "../../src/view/live/render.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const proc = (pid: number, name: string): ProcessInfo =>
  processInfo({ pid, name, path: `/usr/sbin/${name}`, cmdline: `${name} -f`, startTime: "2026-01-01T00:00:00.000Z" });

let cookies = 0;
const ep = (o: Partial<Endpoint> = {}): Endpoint => endpoint({ cookie: String(++cookies), process: proc(10, "app"), ...o });

const plain = (line: string) => line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
const opts = (o: Partial<RenderOptions> = {}): RenderOptions => ({ width: 120, height: 12, colour: true, now: Date.parse("2026-01-01T01:00:00Z"), hostName: "box", ...o });
const lineWith = (lines: string[], text: string) => {
  const found = lines.find((l) => plain(l).includes(text));
  if (!found) throw new Error(`no line contains ${text}:\n${lines.map(plain).join("\n")}`);
  return found;
};

function scene(): LiveModel {
  const m = new LiveModel({ sortColumn: "localPort", names: false });
  const stays = ep({ localPort: 1001, process: proc(11, "stays") });
  const closes = ep({ localPort: 1002, process: proc(12, "closes") });
  const changes = ep({ localPort: 1003, process: proc(13, "changes") });
  m.load([stays, closes, changes]);
  m.applyRefresh([
    { type: "opened", seq: 1, time: 0, endpoint: ep({ localPort: 1004, process: proc(14, "opens") }) },
    { type: "state-changed", seq: 2, time: 0, endpoint: { ...changes, state: "CLOSE_WAIT" }, previousState: "ESTABLISHED" },
    { type: "closed", seq: 3, time: 0, endpoint: closes },
  ]);
  return m;
}

describe("renderScreen", () => {
  test("one line per terminal row, none wider than the terminal", () => {
    for (const [width, height] of [[120, 12], [80, 24], [40, 6], [20, 3], [10, 1]] as const) {
      const lines = renderScreen(scene(), opts({ width, height }));
      expect(lines).toHaveLength(height);
      for (const l of lines) expect(plain(l).length).toBeLessThanOrEqual(width);
    }
  });

  test("title, headers, rows and the key hints", () => {
    const lines = renderScreen(scene(), opts()).map(plain);
    expect(lines[0]).toMatch(/^ sockwarden on box {2}4 of 4 endpoints {2}connected {2}numeric {2}every 1 s {2}sort: Local Port ▲/);
    expect(lines[1]).toMatch(/^Process +PID Proto Local Address +Port▲ Remote Address +Port State +Sent Recv/);
    expect(lines[2]).toMatch(/^stays +11 tcp +127\.0\.0\.1 +1001 127\.0\.0\.1 +2000 ESTABLISHED +0 +0/);
    expect(lines.at(-1)).toMatch(/^ q quit {2}\? help {2}\/ filter/);
  });

  test("new rows green, closed red, changed yellow, the selection in reverse video", () => {
    const lines = renderScreen(scene(), opts());
    expect(lineWith(lines, "opens")).toMatch(/^\x1b\[32m/);
    expect(lineWith(lines, "closes")).toMatch(/^\x1b\[31m/);
    expect(lineWith(lines, "changes")).toMatch(/^\x1b\[33m/);
    expect(lineWith(lines, "CLOSE_WAIT")).toContain("changes");
    expect(lineWith(lines, "stays")).toMatch(/^\x1b\[7m/);
  });

  test("without colour, marks stand in for the colours", () => {
    const lines = renderScreen(scene(), opts({ colour: false })).map(plain);
    expect(lineWith(lines, "opens")).toMatch(/^\+ opens/);
    expect(lineWith(lines, "closes")).toMatch(/^- closes/);
    expect(lineWith(lines, "changes")).toMatch(/^~ changes/);
    expect(lineWith(lines, "stays")).toMatch(/^ {2}stays/);
  });

  test("names: service names and host names in place of numbers", () => {
    const m = new LiveModel({ names: true, hosts: new Map([["192.0.2.7", "mail.example"]]) });
    m.load([ep({ localPort: 25, remoteAddress: "192.0.2.7", remotePort: 40000, process: proc(5, "postfix") })]);
    const row = plain(lineWith(renderScreen(m, opts()), "postfix"));
    expect(row).toMatch(/127\.0\.0\.1 +smtp mail\.example +40000/);
    m.toggleNames();
    expect(plain(lineWith(renderScreen(m, opts()), "postfix"))).toMatch(/127\.0\.0\.1 +25 192\.0\.2\.7 +40000/);
  });

  test("control characters in process names cannot reach the terminal", () => {
    const m = new LiveModel();
    m.load([ep({ process: proc(5, "evil\x1b[2Jname") })]);
    const lines = renderScreen(m, opts());
    expect(lines.join("\n")).not.toContain("\x1b[2J");
    expect(plain(lines[2]!)).toContain("evil\\x1b[2Jn");
  });

  test("80 columns with IPv6 addresses: addresses cut in the middle, counters dropped", () => {
    const m = new LiveModel();
    m.load([ep({ family: 6, localAddress: "2001:db8:1234:5678:9abc:def0:1234:5678", remoteAddress: "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", remotePort: 51234 })]);
    const lines = renderScreen(m, opts({ width: 80 })).map(plain);
    expect(lines[1]).not.toContain("Recv");
    expect(lines[2]).toContain("…");
    expect(lines[2]).toContain("51234");
    expect(lines[2]).toContain("ESTABLISHED");
  });

  test("the status line shows prompts, the filter being typed, and messages", () => {
    const m = scene();
    m.confirm = { action: "close-endpoint", endpoint: ep(), prompt: "Close it? (y/n)" };
    expect(renderScreen(m, opts()).at(-1)).toMatch(/^\x1b\[1m\x1b\[33m Close it\? \(y\/n\)/);
    m.confirm = null;
    m.editingFilter = true;
    m.setFilter("closes");
    const lines = renderScreen(m, opts()).map(plain);
    expect(lines.at(-1)).toMatch(/^ Filter: closes_/);
    expect(lines[0]).toContain("filter: closes");
    expect(lines.filter((l) => /^(stays|closes|changes|opens)/.test(l))).toEqual([expect.stringMatching(/^closes/)]);
    m.editingFilter = false;
    m.message = { text: "cannot close: permission", error: true };
    expect(renderScreen(m, opts()).at(-1)).toMatch(/^\x1b\[31m cannot close: permission/);
    m.setFilter("zzz");
    expect(renderScreen(m, opts()).map(plain)[2]).toContain('no endpoint matches "zzz"');
  });

  test("paused shows in the title; the interval is written in seconds", () => {
    const m = scene();
    m.paused = true;
    expect(plain(renderScreen(m, opts())[0]!)).toMatch(/^ sockwarden on box {2}PAUSED {2}/);
    expect(intervalText(250)).toBe("0.25 s");
    expect(intervalText(2000)).toBe("2 s");
  });

  test("the selection stays on screen when the table is longer than the terminal", () => {
    const m = new LiveModel({ sortColumn: "localPort" });
    m.load(Array.from({ length: 30 }, (_, i) => ep({ localPort: 5000 + i })));
    m.moveTo(25);
    m.fitScroll(9);
    const lines = renderScreen(m, opts({ height: 12 }));
    expect(lineWith(lines, "5025")).toMatch(/^\x1b\[7m/);
    expect(lines.map(plain).filter((l) => l.startsWith("app"))).toHaveLength(9);
  });
});

describe("panels", () => {
  const details: ProcessDetails = {
    ...proc(10, "app"),
    cmdline: "app --serve 8080",
    ppidName: "systemd",
    cgroup: "/system.slice/app.service",
    unit: "app.service",
    unitUid: null,
    state: "S (sleeping)",
    threads: 4,
    rssKiB: 20480,
    fdCount: 12,
    netns: 4026531840,
  };

  test("the properties panel: path, command line, user, start time, parent, unit, cgroup", () => {
    const m = scene();
    const row = ep();
    m.overlay = { kind: "properties", endpoint: row, pid: 10, details, reused: false, scroll: 0 };
    const lines = renderScreen(m, opts({ height: 24 })).map(plain);
    const text = lines.join("\n");
    expect(lines[1]).toMatch(/^ Properties of app \(pid 10\)/);
    expect(text).toContain("Endpoint: tcp 127.0.0.1:1000 -> 127.0.0.1:2000 (app, pid 10) ESTABLISHED");
    expect(text).toMatch(/Path: +\/usr\/sbin\/app/);
    expect(text).toMatch(/Command line: +app --serve 8080/);
    expect(text).toMatch(/User: +root \(uid 0\)/);
    expect(text).toMatch(/Started: +2026-01-01T00:00:00\.000Z \(1h ago\)/);
    expect(text).toMatch(/Parent: +1 \(systemd\)/);
    expect(text).toMatch(/Unit: +app\.service/);
    expect(text).toMatch(/Cgroup: +\/system\.slice\/app\.service/);
    expect(lines.at(-1)).toMatch(/Esc close/);
    expect(text).not.toContain("stays");
  });

  test("a process that exited, and a PID now used by another process, are said so", () => {
    const m = scene();
    m.overlay = { kind: "properties", endpoint: ep(), pid: 10, details: null, reused: false, scroll: 0 };
    expect(renderScreen(m, opts()).map(plain).join("\n")).toContain("Process 10 has exited.");
    m.overlay = { kind: "properties", endpoint: ep(), pid: 10, details: { ...details, name: "other" }, reused: true, scroll: 0 };
    expect(renderScreen(m, opts({ height: 30 })).map(plain).join("\n")).toMatch(/PID 10 now belongs to another process/);
  });

  test("long panels scroll, and never past their end", () => {
    const m = scene();
    m.overlay = { kind: "help", scroll: 0 };
    const first = renderScreen(m, opts({ height: 8 })).map(plain);
    expect(first[1]).toMatch(/^ Keys/);
    m.overlay.scroll = 1000;
    const last = renderScreen(m, opts({ height: 8 })).map(plain);
    expect(last.at(-2)).toMatch(/quit/);
  });
});

describe("fitting the terminal", () => {
  // A name as long as the kernel keeps them (15), an IPv4 pair, counters in MiB.
  function busy(o: Partial<Endpoint> = {}): LiveModel {
    const m = new LiveModel({ names: false, connectedOnly: false });
    m.load([
      ep({ process: proc(123456, "systemd-resolve"), localAddress: "192.168.100.123", localPort: 44312, remoteAddress: "140.82.112.21", remotePort: 443, bytesSent: 123_456, bytesReceived: 98_765_432, ...o }),
      ep({ process: null, pids: [], localAddress: "0.0.0.0", localPort: 22, remoteAddress: "0.0.0.0", remotePort: 0, state: "LISTEN", bytesSent: null, bytesReceived: null }),
    ]);
    return m;
  }
  const cells = (line: string) => Bun.stringWidth(plain(line));

  test("80 columns: whole process names and addresses, the PID; counters give way first", () => {
    const lines = renderScreen(busy(), opts({ width: 80 })).map(plain);
    expect(lines[1]).toMatch(/^Process▲ +PID /);
    expect(lineWith(lines, "123456")).toMatch(/^systemd-resolve +123456 .*192\.168\.100\.123 +44312 140\.82\.112\.21 +443 ESTABLISHED/);
  });

  test("70 columns: the PID stays, and names and addresses share the cuts", () => {
    const lines = renderScreen(busy(), opts({ width: 70 })).map(plain);
    expect(lines[1]).toMatch(/^Process▲ +PID /);
    const row = lineWith(lines, "123456");
    const name = row.split(" ")[0]!;
    const local = row.match(/ (192\S*) /)![1]!;
    expect(name.length).toBeGreaterThanOrEqual(10);
    expect(Math.abs(name.length - local.length)).toBeLessThanOrEqual(2);
  });

  test("the key hints drop whole hints, least needed first, never cut in a word", () => {
    const all = ["q quit", "? help", "/ filter", "Space pause", "+/- interval", "^R names", "a all", "1-0 sort", "Enter properties", "c close", "K end process"];
    for (const width of [200, 120, 80, 60, 40]) {
      const hints = plain(renderScreen(busy(), opts({ width })).at(-1)!).trim().split("  ");
      for (const h of hints) expect(all).toContain(h);
      if (width >= 40) expect(hints.slice(0, 3)).toEqual(["q quit", "? help", "/ filter"]);
      if (width >= 80) expect(hints).toContain("K end process");
    }
    expect(plain(renderScreen(busy(), opts({ width: 200 })).at(-1)!).trim().split("  ")).toEqual(all);
  });

  test("counters are said in KiB and MiB, which is what they count", () => {
    const row = lineWith(renderScreen(busy(), opts({ width: 160 })).map(plain), "123456");
    expect(row).toMatch(/ 121KiB +94\.2MiB/);
  });

  test("wide characters take two cells: every drawn line exactly as wide as the terminal", () => {
    for (const width of [160, 120, 80, 70, 50]) {
      const lines = renderScreen(busy({ process: proc(7, "数据库服务器"), remoteAddress: "例え.example" }), opts({ width, colour: false }));
      // Lines below the last row are left empty; every other one fills the width exactly.
      for (const l of lines) if (l !== "") expect(cells(l), `${width}: ${plain(l)}`).toBe(width);
      const header = plain(lines[1]!);
      if (!header.includes("PID")) continue;
      // Columns line up: the PID ends where its header does.
      const pidEnd = header.indexOf("PID") + 3;
      const row = plain(lineWith(lines, " 7 "));
      expect(Bun.stringWidth(row.slice(0, row.indexOf(" 7 ") + 2))).toBe(pidEnd);
    }
  });

  test("> and < step through the columns on screen, not hidden ones", () => {
    const m = busy();
    m.sortBy("recv");
    renderScreen(m, opts({ width: 160 }));
    m.shiftSort(1);
    // No namespace column is on show: from Recv, the next is the first column.
    expect(m.sortColumn).toBe("process");
    renderScreen(m, opts({ width: 80 }));
    m.shiftSort(-1);
    expect(m.sortColumn).toBe("state");
    m.sortBy("localPort");
    renderScreen(m, opts({ width: 80 }));
    m.shiftSort(-1);
    m.shiftSort(-1);
    m.shiftSort(-1);
    // Proto is off the screen at 80 columns.
    expect(m.sortColumn).toBe("process");
  });
});

describe("the filter", () => {
  test("takes a state as --state does, with a dash or an underscore", () => {
    const m = scene();
    for (const text of ["close-wait", "CLOSE_WAIT", "close_wait"]) {
      m.setFilter(text);
      expect(m.view().map((r) => r.endpoint.process?.name), text).toEqual(["changes"]);
    }
  });
});
