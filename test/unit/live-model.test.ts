import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";
import { endpointKey } from "../../src/monitor/endpoint-key.ts";
import type { EndpointEvent, EventType } from "../../src/monitor/events.ts";
import { COLUMN_IDS, fitColumns, openedText, type ColumnId } from "../../src/view/live/columns.ts";
import { HIGHLIGHT_REFRESHES, INTERVAL_STEPS_MS, LiveModel, sameProcess, scrollTop } from "../../src/view/live/model.ts";
import { endpoint, namedProcess } from "../support/endpoints.ts";

const proc = (pid: number, name: string, startTime: string | null = null): ProcessInfo => namedProcess(pid, name, { startTime });

let cookies = 0;
const ep = (o: Partial<Endpoint> = {}): Endpoint => endpoint({ cookie: String(++cookies), process: proc(10, "app"), ...o });

let seq = 0;
const ev = (type: EventType, endpoint: Endpoint, extra: Partial<EndpointEvent> = {}): EndpointEvent => ({ type, seq: ++seq, time: 0, endpoint, ...extra });

const highlights = (m: LiveModel) => m.view().map((r) => `${r.endpoint.localPort}:${r.highlight ?? "-"}`);
const ports = (m: LiveModel) => m.view().map((r) => r.endpoint.localPort);

describe("highlights", () => {
  test("rows present at start are not highlighted", () => {
    const m = new LiveModel();
    m.load([ep({ localPort: 1 }), ep({ localPort: 2 })]);
    expect(highlights(m)).toEqual(["1:-", "2:-"]);
  });

  test("new rows are green for three refreshes, then plain", () => {
    const m = new LiveModel();
    const a = ep({ localPort: 5 });
    m.applyRefresh([ev("opened", a)]);
    for (let i = 1; i < HIGHLIGHT_REFRESHES; i++) {
      expect(highlights(m)).toEqual(["5:new"]);
      m.applyRefresh([]);
    }
    expect(highlights(m)).toEqual(["5:new"]);
    m.applyRefresh([]);
    expect(highlights(m)).toEqual(["5:-"]);
  });

  test("closed rows stay red for three refreshes, then go", () => {
    const m = new LiveModel();
    const a = ep({ localPort: 5 });
    m.load([a]);
    m.applyRefresh([ev("closed", a)]);
    expect(highlights(m)).toEqual(["5:closed"]);
    m.applyRefresh([]);
    m.applyRefresh([]);
    expect(highlights(m)).toEqual(["5:closed"]);
    m.applyRefresh([]);
    expect(highlights(m)).toEqual([]);
    expect(m.rows.size).toBe(0);
  });

  test("a state change is yellow for three refreshes and shows the new state", () => {
    const m = new LiveModel();
    const a = ep({ localPort: 5 });
    m.load([a]);
    m.applyRefresh([ev("state-changed", { ...a, state: "CLOSE_WAIT" }, { previousState: "ESTABLISHED" })]);
    expect(highlights(m)).toEqual(["5:changed"]);
    expect(m.view()[0]!.endpoint.state).toBe("CLOSE_WAIT");
    m.applyRefresh([]);
    m.applyRefresh([]);
    expect(highlights(m)).toEqual(["5:changed"]);
    m.applyRefresh([]);
    expect(highlights(m)).toEqual(["5:-"]);
  });

  test("a fresh event restarts the count; counters update without a highlight", () => {
    const m = new LiveModel();
    const a = ep({ localPort: 5 });
    m.load([a]);
    m.applyRefresh([ev("state-changed", { ...a, state: "FIN_WAIT2" })]);
    m.applyRefresh([]);
    m.applyRefresh([ev("state-changed", { ...a, state: "TIME_WAIT" })]);
    m.applyRefresh([]);
    m.applyRefresh([]);
    expect(highlights(m)).toEqual(["5:changed"]);
    m.applyRefresh([ev("counters", { ...a, state: "TIME_WAIT", bytesSent: 99 })]);
    expect(highlights(m)).toEqual(["5:-"]);
    expect(m.view()[0]!.endpoint.bytesSent).toBe(99);
  });

  test("a connection that opened and closed between refreshes shows red", () => {
    const m = new LiveModel();
    const a = ep({ localPort: 5 });
    m.applyRefresh([ev("opened", a, { shortLived: true }), ev("closed", a, { shortLived: true })]);
    expect(highlights(m)).toEqual(["5:closed"]);
  });

  test("the current endpoints replace what rows show (an owner found later)", () => {
    const m = new LiveModel();
    const a = ep({ localPort: 5, process: null, pids: [] });
    m.load([a]);
    m.applyRefresh([], [{ ...a, process: proc(44, "late"), pids: [44] }]);
    expect(m.view()[0]!.endpoint.process?.name).toBe("late");
  });
});

describe("PID reuse", () => {
  test("rows are keyed by socket, so a reused PID does not rename or revive old rows", () => {
    const m = new LiveModel({ sortColumn: "localPort" });
    const old = ep({ localPort: 1, process: proc(100, "oldapp", "2026-01-01T00:00:00.000Z"), pids: [100] });
    m.load([old]);
    // The old process exits; a new one gets PID 100 and opens its own socket.
    const fresh = ep({ localPort: 2, process: proc(100, "newapp", "2026-01-01T00:05:00.000Z"), pids: [100] });
    m.applyRefresh([ev("opened", fresh), ev("closed", old)]);
    expect(m.view().map((r) => `${r.endpoint.process?.name}:${r.highlight}`)).toEqual(["oldapp:closed", "newapp:new"]);
    m.applyRefresh([]);
    m.applyRefresh([]);
    m.applyRefresh([]);
    expect(m.view().map((r) => `${r.endpoint.process?.name}:${r.highlight ?? "-"}`)).toEqual(["newapp:-"]);
  });

  test("without cookies, an address pair reused by another process is a new row", () => {
    const m = new LiveModel();
    const old = ep({ cookie: null, process: proc(100, "oldapp"), pids: [100] });
    m.load([old]);
    m.applyRefresh([ev("closed", old)]);
    const again = ep({ cookie: null, process: proc(100, "newapp"), pids: [100] });
    expect(endpointKey(again)).toBe(endpointKey(old));
    m.applyRefresh([ev("opened", again)]);
    expect(m.view().map((r) => `${r.endpoint.process?.name}:${r.highlight}`)).toEqual(["newapp:new"]);
  });

  test("sameProcess tells a reused PID by its start time", () => {
    expect(sameProcess("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z")).toBe(true);
    expect(sameProcess("2026-01-01T00:00:00.000Z", "2026-01-01T00:05:00.000Z")).toBe(false);
    expect(sameProcess(null, "2026-01-01T00:05:00.000Z")).toBe(true);
  });
});

describe("sorting", () => {
  // Each endpoint is the smallest in a different column, so every column gives its own order.
  const rows = [
    ep({ process: proc(30, "bravo"), pids: [30], protocol: "udp", family: 6, localAddress: "10.0.0.9", localPort: 300, remoteAddress: "10.0.0.2", remotePort: 53, state: null, bytesSent: null, bytesReceived: null, namespace: { inode: 2, name: "ns-b", container: null }, openedAt: null }),
    ep({ process: proc(20, "alpha"), pids: [20], family: 6, localAddress: "::1", localPort: 20, remoteAddress: "::1", remotePort: 9000, state: "LISTEN", bytesSent: 500, bytesReceived: 7, openedAt: "2026-12-07T10:00:02.000Z" }),
    ep({ process: proc(40, "charlie"), pids: [40], localAddress: "10.0.0.10", localPort: 4000, remoteAddress: "10.0.0.1", remotePort: 700, state: "CLOSE_WAIT", bytesSent: 10, bytesReceived: 300, namespace: { inode: 1, name: "ns-a", container: null }, openedAt: "2026-12-07T10:00:01.000Z" }),
    ep({ process: null, pids: [], protocol: "udp", localAddress: "127.0.0.1", localPort: 80, remoteAddress: "192.168.1.1", remotePort: 80, state: "TIME_WAIT", bytesSent: 20000, bytesReceived: 0, namespace: { inode: 3, name: "ns-c", container: null }, createdAt: "2026-12-07T10:00:03.000Z" }),
  ];
  const name = (e: Endpoint) => e.process?.name ?? "-";
  const expected: Record<ColumnId, string[]> = {
    process: ["alpha", "bravo", "charlie", "-"],
    pid: ["alpha", "bravo", "charlie", "-"],
    proto: ["charlie", "alpha", "-", "bravo"],
    local: ["bravo", "charlie", "-", "alpha"],
    localPort: ["alpha", "-", "bravo", "charlie"],
    remote: ["charlie", "bravo", "-", "alpha"],
    remotePort: ["bravo", "-", "charlie", "alpha"],
    state: ["charlie", "bravo", "alpha", "-"],
    // An unknown count ("-", bravo's) comes last ascending, as an unknown PID and process do.
    sent: ["charlie", "alpha", "-", "bravo"],
    recv: ["-", "alpha", "charlie", "bravo"],
    // Linux's openedAt and Windows' createdAt alike; unknown (bravo's) last.
    opened: ["charlie", "alpha", "-", "bravo"],
    namespace: ["alpha", "charlie", "bravo", "-"],
  };

  for (const id of COLUMN_IDS) {
    test(`by ${id}, both ways`, () => {
      const m = new LiveModel({ connectedOnly: false });
      m.load(rows);
      m.sortBy(id === "process" ? "pid" : "process");
      m.sortBy(id);
      expect(m.view().map((r) => name(r.endpoint))).toEqual(expected[id]);
      m.sortBy(id);
      expect(m.descending).toBe(true);
      expect(m.view().map((r) => name(r.endpoint))).toEqual([...expected[id]].reverse());
    });
  }

  test("< and > walk through the columns; r reverses", () => {
    const m = new LiveModel();
    m.shiftSort(-1);
    expect(m.sortColumn).toBe("namespace");
    m.shiftSort(1);
    m.shiftSort(1);
    expect(m.sortColumn).toBe("pid");
    m.reverseSort();
    expect(m.descending).toBe(true);
  });

  test("ties keep the listing order, whatever the direction", () => {
    const m = new LiveModel({ sortColumn: "process" });
    m.load([ep({ localPort: 3 }), ep({ localPort: 1 }), ep({ localPort: 2 })]);
    expect(ports(m)).toEqual([1, 2, 3]);
    m.sortBy("process");
    expect(ports(m)).toEqual([1, 2, 3]);
  });
});

describe("filtering", () => {
  const rows = [
    ep({ process: proc(111, "nginx"), pids: [111], localAddress: "10.1.1.1", localPort: 443, remoteAddress: "203.0.113.9", remotePort: 51000 }),
    ep({ process: proc(222, "sshd"), pids: [222], localAddress: "10.1.1.1", localPort: 22, remoteAddress: "198.51.100.7", remotePort: 40000, state: "CLOSE_WAIT" }),
    ep({ process: proc(333, "postfix"), pids: [333], protocol: "tcp", family: 6, localAddress: "2001:db8::1", localPort: 25, remoteAddress: "2001:db8::99", remotePort: 33000 }),
  ];
  const shown = (m: LiveModel, filter: string) => {
    m.setFilter(filter);
    return m.view().map((r) => r.endpoint.process?.name);
  };

  test("matches process name, PID, address, port and state, case-insensitively", () => {
    const m = new LiveModel({ names: false });
    m.load(rows);
    expect(shown(m, "NGINX")).toEqual(["nginx"]);
    expect(shown(m, "222")).toEqual(["sshd"]);
    expect(shown(m, "203.0.113")).toEqual(["nginx"]);
    expect(shown(m, "2001:db8::99")).toEqual(["postfix"]);
    expect(shown(m, "443")).toEqual(["nginx"]);
    expect(shown(m, "close_wait")).toEqual(["sshd"]);
    expect(shown(m, "tcp6")).toEqual(["postfix"]);
    expect(shown(m, "10.1.1.1 22")).toEqual(["sshd"]);
    expect(shown(m, "nomatch")).toEqual([]);
    expect(shown(m, "")).toEqual(["nginx", "postfix", "sshd"]);
  });

  test("with names on, service and host names match too", () => {
    const m = new LiveModel({ names: true, hosts: new Map([["203.0.113.9", "client.example"]]) });
    m.load(rows);
    expect(shown(m, "smtp")).toEqual(["postfix"]);
    expect(shown(m, "client.example")).toEqual(["nginx"]);
    m.toggleNames();
    expect(shown(m, "client.example")).toEqual([]);
  });

  test("connected only hides listeners and unconnected UDP; the command line's scope always applies", () => {
    const listener = ep({ localPort: 80, remotePort: 0, remoteAddress: "0.0.0.0", state: "LISTEN" });
    const udp = ep({ protocol: "udp", localPort: 53, remotePort: 0, remoteAddress: "0.0.0.0", state: null });
    const conn = ep({ localPort: 5000 });
    const m = new LiveModel({ connectedOnly: true, scope: (e) => e.localPort !== 5000 || e.protocol === "tcp" });
    m.load([listener, udp, conn, ep({ localPort: 6000, protocol: "udp", state: null, remotePort: 0, remoteAddress: "0.0.0.0" })]);
    expect(ports(m)).toEqual([5000]);
    m.toggleConnectedOnly();
    expect(ports(m)).toEqual([80, 5000, 53, 6000]);
    const scoped = new LiveModel({ connectedOnly: false, scope: (e) => e.protocol === "tcp" });
    scoped.load([listener, udp, conn]);
    expect(ports(scoped)).toEqual([80, 5000]);
    expect(scoped.counts()).toEqual({ shown: 2, total: 2 });
  });
});

describe("selection and scrolling", () => {
  test("the selection follows its row when the order changes", () => {
    const m = new LiveModel({ sortColumn: "localPort" });
    m.load([1, 2, 3, 4].map((p) => ep({ localPort: p })));
    m.move(2);
    expect(m.selected()!.endpoint.localPort).toBe(3);
    m.sortBy("localPort");
    expect(ports(m)).toEqual([4, 3, 2, 1]);
    expect(m.selected()!.endpoint.localPort).toBe(3);
    expect(m.cursorIndex()).toBe(1);
  });

  test("when the selected row goes, the row now in its place is selected", () => {
    const m = new LiveModel({ sortColumn: "localPort" });
    const eps = [1, 2, 3].map((p) => ep({ localPort: p }));
    m.load(eps);
    m.move(1);
    m.applyRefresh([ev("closed", eps[1]!)]);
    expect(m.selected()!.endpoint.localPort).toBe(2);
    for (let i = 0; i < HIGHLIGHT_REFRESHES; i++) m.applyRefresh([]);
    expect(m.selected()!.endpoint.localPort).toBe(3);
    m.setFilter("no such row");
    expect(m.selected()).toBeNull();
    m.setFilter("");
    expect(m.selected()!.endpoint.localPort).toBe(1);
  });

  test("moves stop at the ends; scrolling keeps the selection on the page", () => {
    const m = new LiveModel({ sortColumn: "localPort" });
    m.load(Array.from({ length: 50 }, (_, i) => ep({ localPort: i + 1 })));
    m.move(-5);
    expect(m.cursorIndex()).toBe(0);
    m.moveTo(Number.MAX_SAFE_INTEGER);
    expect(m.cursorIndex()).toBe(49);
    m.fitScroll(10);
    expect(m.top).toBe(40);
    m.move(-12);
    m.fitScroll(10);
    expect(m.top).toBe(37);
    expect(scrollTop(0, 0, 10, 3)).toBe(0);
    expect(scrollTop(45, 45, 10, 50)).toBe(40);
  });
});

test("the interval steps up and down through fixed values", () => {
  const m = new LiveModel({ intervalMs: 1000 });
  expect(m.stepInterval(1)).toBe(2000);
  expect(m.stepInterval(-1)).toBe(1000);
  expect(m.stepInterval(-1)).toBe(500);
  const odd = new LiveModel({ intervalMs: 1500 });
  expect(odd.stepInterval(1)).toBe(2000);
  expect(new LiveModel({ intervalMs: 1500 }).stepInterval(-1)).toBe(1000);
  const top = new LiveModel({ intervalMs: INTERVAL_STEPS_MS.at(-1)! });
  expect(top.stepInterval(1)).toBe(INTERVAL_STEPS_MS.at(-1));
  const bottom = new LiveModel({ intervalMs: 100 });
  expect(bottom.stepInterval(-1)).toBe(INTERVAL_STEPS_MS[0]);
});

describe("column layout", () => {
  const natural = new Map<ColumnId, number>([
    ["process", 12], ["pid", 5], ["proto", 5], ["local", 39], ["localPort", 5], ["remote", 39], ["remotePort", 5],
    ["state", 11], ["sent", 5], ["recv", 5],
  ]);
  const total = (cols: ReturnType<typeof fitColumns>) => cols.reduce((s, c) => s + c.width, 0) + cols.length - 1;

  test("everything at natural width when it fits", () => {
    const cols = fitColumns(natural, 200);
    // The namespace and opened columns have nothing to show here, so they are left out.
    expect(cols.map((c) => c.spec.id)).toEqual(COLUMN_IDS.filter((id) => id !== "namespace" && id !== "opened"));
    expect(fitColumns(new Map([...natural, ["namespace", 12], ["opened", 8]]), 200).map((c) => c.spec.id)).toEqual([...COLUMN_IDS]);
    expect(cols.find((c) => c.spec.id === "local")!.width).toBe(39);
  });

  test("the opened column is the first to go when space is short", () => {
    const wide = new Map<ColumnId, number>([...natural, ["opened", 8]]);
    let hidden = 0;
    for (let width = 200; width >= 40; width--) {
      const ids = fitColumns(wide, width).map((c) => c.spec.id);
      if (!ids.includes("opened")) hidden++;
      // Whenever a counter has gone, the opened column went before it.
      if (!ids.includes("recv")) expect(ids, `at ${width} columns`).not.toContain("opened");
    }
    expect(hidden).toBeGreaterThan(0);
  });

  test("opened: the time of day for today, with the date otherwise", () => {
    const now = new Date(2026, 11, 7, 15, 0, 0);
    expect(openedText(ep({ openedAt: new Date(2026, 11, 7, 9, 5, 7).toISOString() }), now)).toBe("09:05:07");
    expect(openedText(ep({ createdAt: new Date(2026, 11, 6, 23, 59, 1).toISOString() }), now)).toBe("12-06 23:59:01");
    expect(openedText(ep({ openedAt: null }), now)).toBe("");
    expect(openedText(ep({ openedAt: "not a time" }), now)).toBe("");
  });

  test("80 columns: addresses cut, counters hidden first", () => {
    const cols = fitColumns(natural, 80);
    expect(total(cols)).toBeLessThanOrEqual(80);
    expect(cols.map((c) => c.spec.id)).not.toContain("recv");
    expect(cols.map((c) => c.spec.id)).toEqual(expect.arrayContaining(["process", "local", "localPort", "remote", "remotePort", "state"]));
    for (const c of cols) expect(c.width).toBeGreaterThanOrEqual(Math.min(c.spec.minWidth ?? 0, natural.get(c.spec.id)!));
  });
});

describe("destroy notices without addresses", () => {
  // What the kernel's notice can carry for a listener that went away: no addresses, no process.
  const blank = (o: Partial<Endpoint> = {}) =>
    ep({ localAddress: "0.0.0.0", localPort: 0, remoteAddress: "0.0.0.0", remotePort: 0, state: "CLOSE", process: null, pids: [], ...o });

  test("make no row, as the short-lived pair the monitor makes of them or alone", () => {
    const m = new LiveModel({ connectedOnly: false });
    m.load([ep({ localPort: 5 })]);
    const junk = blank();
    m.applyRefresh([ev("opened", junk, { shortLived: true }), ev("closed", junk, { shortLived: true }), ev("closed", blank({ family: 6, localAddress: "::", remoteAddress: "::" }))]);
    expect(highlights(m)).toEqual(["5:-"]);
    expect(m.rows.size).toBe(1);
  });

  test("close a known row as it was last seen, addresses and process kept", () => {
    const m = new LiveModel({ connectedOnly: false });
    const listener = ep({ localPort: 8080, remoteAddress: "0.0.0.0", remotePort: 0, state: "LISTEN" });
    m.load([listener]);
    m.applyRefresh([ev("closed", blank({ cookie: listener.cookie }))]);
    expect(highlights(m)).toEqual(["8080:closed"]);
    expect(m.view()[0]!.endpoint.process?.name).toBe("app");
  });
});
