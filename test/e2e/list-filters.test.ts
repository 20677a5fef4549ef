/**
 * Filters and output formats of `sockwarden list`, in a private namespace running the socket
 * scenario. Each filtered listing is compared with the full `list -a --json` listing filtered
 * here by the documented rule, so the expected set is exact and known.
 *
 * Needs root (network namespace, raw socket in the scenario) and a built dist/sockwarden.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpointKey, keyWithPids, sortedKeys } from "./helpers/compare.ts";
import { Netns, describeRun, requireRoot } from "./helpers/netns.ts";
import { type Scenario, startScenario } from "./helpers/scenario.ts";
import { type JsonEndpoint, listJson, requireExecutable, runSockwarden } from "./helpers/sockwarden.ts";

let ns: Netns | undefined;
let scenario: Scenario;
/** `list -a --json`, taken once; the scenario holds still, so later listings must agree. */
let all: JsonEndpoint[];

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("f");
  scenario = await startScenario(ns);
  all = await listJson(ns, ["-a"]);
  // Sanity: the full listing is the scenario (list-vs-ss checks this in depth).
  expect(sortedKeys(all, keyWithPids)).toEqual(sortedKeys(scenario.description.sockets, keyWithPids));
});

afterAll(async () => {
  await ns?.dispose();
});

const keys = (endpoints: readonly JsonEndpoint[]) => sortedKeys(endpoints, keyWithPids);

/** `list <args> --json` must list exactly `expected`, and at least one endpoint. */
async function expectListing(args: string[], expected: readonly JsonEndpoint[]): Promise<JsonEndpoint[]> {
  scenario.assertTimeWaitAlive();
  expect(expected.length, `the scenario gives ${args.join(" ")} something to find`).toBeGreaterThan(0);
  const listed = await listJson(ns!, args);
  expect(keys(listed), args.join(" ")).toEqual(keys(expected));
  return listed;
}

/** RFC 4180 records (quoted fields may hold commas, quotes and newlines). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      record.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      record.push(field);
      records.push(record);
      record = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (field !== "" || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records;
}

describe("protocol and family", () => {
  it("-t lists TCP only", async () => {
    await expectListing(["-a", "-t"], all.filter((e) => e.protocol === "tcp"));
  });

  it("-u lists UDP only", async () => {
    await expectListing(["-a", "-u"], all.filter((e) => e.protocol === "udp"));
  });

  it("-4 lists IPv4 only", async () => {
    await expectListing(["-a", "-4"], all.filter((e) => e.family === 4));
  });

  it("-6 lists IPv6 only (v4-mapped connections on IPv6 sockets included)", async () => {
    const listed = await expectListing(["-a", "-6"], all.filter((e) => e.family === 6));
    expect(listed.some((e) => e.localAddress === "::ffff:127.0.0.1")).toBe(true);
  });

  it("-u -6 combines", async () => {
    await expectListing(["-a", "-u", "-6"], all.filter((e) => e.protocol === "udp" && e.family === 6));
  });
});

describe("states", () => {
  it("without -a lists connected TCP endpoints only", async () => {
    scenario.assertTimeWaitAlive();
    const listed = await listJson(ns!, []);
    for (const e of listed) {
      expect(e.protocol, endpointKey(e)).toBe("tcp");
      expect(["LISTEN", "CLOSE"], endpointKey(e)).not.toContain(e.state);
    }
    // Whether TIME_WAIT, SYN_SENT and SYN_RECV count as connected is left open (ss leaves out
    // TIME_WAIT and SYN_RECV, netstat shows them); these are connected by any reading.
    const connected = all.filter(
      (e) => e.protocol === "tcp" && ["ESTABLISHED", "FIN_WAIT2", "CLOSE_WAIT"].includes(e.state ?? ""),
    );
    expect(connected.length).toBeGreaterThan(0);
    expect(keys(listed)).toEqual(expect.arrayContaining(keys(connected)));
    // Nothing that is not in the full listing.
    expect(keys(all)).toEqual(expect.arrayContaining(keys(listed)));
  });

  it("--state listen lists listeners only", async () => {
    await expectListing(["-a", "-t", "--state", "listen"], all.filter((e) => e.protocol === "tcp" && e.state === "LISTEN"));
  });

  it("--state takes a list", async () => {
    await expectListing(
      ["-a", "-t", "--state", "ESTABLISHED,CLOSE_WAIT,time_wait"],
      all.filter((e) => e.protocol === "tcp" && ["ESTABLISHED", "CLOSE_WAIT", "TIME_WAIT"].includes(e.state ?? "")),
    );
  });
});

describe("ports and addresses", () => {
  it("--port matches either end", async () => {
    const port = scenario.socket("listen4").localPort;
    const listed = await expectListing(["-a", "--port", String(port)], all.filter((e) => e.localPort === port || e.remotePort === port));
    // The listener, its connections from both sides, a TIME_WAIT and a SYN_RECV.
    expect(new Set(listed.map((e) => e.state))).toEqual(
      new Set(["LISTEN", "ESTABLISHED", "FIN_WAIT2", "CLOSE_WAIT", "TIME_WAIT", "SYN_RECV"]),
    );
  });

  /**
   * Whether an IPv4 address also matches its v4-mapped IPv6 form (a connection accepted by a
   * dual-stack listener) is not settled; both answers are accepted, nothing else is.
   */
  async function expectAddressFilter(
    args: string[],
    matches: (e: JsonEndpoint) => boolean,
    mappedMatches: (e: JsonEndpoint) => boolean = () => false,
  ): Promise<void> {
    scenario.assertTimeWaitAlive();
    const strict = all.filter(matches);
    expect(strict.length).toBeGreaterThan(0);
    const listed = await listJson(ns!, args);
    const withMapped = all.filter((e) => matches(e) || mappedMatches(e));
    const got = keys(listed);
    if (got.join("\n") !== keys(withMapped).join("\n")) expect(got, args.join(" ")).toEqual(keys(strict));
  }

  const mapped = (address: string) => `::ffff:${address}`;

  it("--local with an address", async () => {
    await expectAddressFilter(
      ["-a", "--local", "127.0.0.1"],
      (e) => e.localAddress === "127.0.0.1",
      (e) => e.localAddress === mapped("127.0.0.1"),
    );
  });

  it("--remote with an IPv6 address", async () => {
    await expectAddressFilter(["-a", "--remote", "::1"], (e) => e.remoteAddress === "::1");
  });

  it("--remote with a CIDR", async () => {
    const listed = await expectListing(["-a", "--remote", "192.0.2.0/24"], all.filter((e) => e.remoteAddress.startsWith("192.0.2.")));
    expect(listed.map((e) => e.state)).toEqual(["SYN_RECV"]);
  });

  it("--local with a CIDR", async () => {
    await expectAddressFilter(
      ["-a", "--local", "127.0.0.0/8"],
      (e) => e.family === 4 && e.localAddress.startsWith("127."),
      (e) => e.localAddress.startsWith(mapped("127.")),
    );
  });

  it("--remote with an IPv6 CIDR", async () => {
    await expectAddressFilter(["-a", "--remote", "::1/128"], (e) => e.remoteAddress === "::1");
  });

  it("--local and --remote with a port", async () => {
    const port = scenario.socket("listen6only").localPort;
    await expectListing(["-a", "--local", String(port)], all.filter((e) => e.localPort === port));
    await expectListing(["-a", "--remote", String(port)], all.filter((e) => e.remotePort === port));
  });
});

describe("processes", () => {
  it("a PID lists the sockets that process holds", async () => {
    const { peerPid } = scenario.description;
    await expectListing(["-a", String(peerPid)], all.filter((e) => e.pids.includes(peerPid)));
  });

  it("a PID that shares a socket finds it", async () => {
    const { childPid } = scenario.description;
    const listed = await expectListing(["-a", String(childPid)], all.filter((e) => e.pids.includes(childPid)));
    expect(listed).toHaveLength(1);
  });

  it("a process name lists that process's sockets", async () => {
    const { peerPid } = scenario.description;
    await expectListing(["-a", "swpeer"], all.filter((e) => e.pids.includes(peerPid)));
    const { pid, childPid } = scenario.description;
    await expectListing(["-a", "python3"], all.filter((e) => e.pids.includes(pid) || e.pids.includes(childPid)));
  });

  it("--hide-unowned leaves out sockets without a process", async () => {
    const listed = await expectListing(["-a", "--hide-unowned"], all.filter((e) => e.process !== null));
    expect(all.some((e) => e.state === "TIME_WAIT" && e.process === null)).toBe(true);
    expect(listed.some((e) => e.state === "TIME_WAIT")).toBe(false);
  });
});

describe("output formats", () => {
  it("--ndjson prints one endpoint per line, the same as --json", async () => {
    scenario.assertTimeWaitAlive();
    const result = await runSockwarden(ns!, ["list", "-a", "--ndjson"]);
    expect(result.code, describeRun(result)).toBe(0);
    const lines = result.stdout.split("\n").filter((line) => line !== "");
    expect(lines).toHaveLength(all.length);
    const parsed = lines.map((line) => JSON.parse(line) as JsonEndpoint);
    expect(keys(parsed)).toEqual(keys(all));
  });

  it.each([["--csv"], ["-c"]])("%s prints a header and one row per endpoint", async (flag) => {
    scenario.assertTimeWaitAlive();
    const result = await runSockwarden(ns!, ["list", "-a", flag]);
    expect(result.code, describeRun(result)).toBe(0);
    const [header, ...rows] = parseCsv(result.stdout);
    expect(header?.join(",")).toMatch(/proto/i);
    expect(header?.join(",")).toMatch(/state/i);
    expect(header?.join(",")).toMatch(/local/i);
    expect(rows).toHaveLength(all.length);
    for (const row of rows) expect(row).toHaveLength(header?.length ?? -1);
    expect(result.stdout).toContain(String(scenario.socket("listen6only").localPort));
  });

  it("-e adds user and path columns to the table", async () => {
    scenario.assertTimeWaitAlive();
    const result = await runSockwarden(ns!, ["list", "-a", "-n", "-e"]);
    expect(result.code, describeRun(result)).toBe(0);
    const [header = "", ...rows] = result.stdout.split("\n").filter((line) => line.trim() !== "");
    expect(header).toMatch(/\bUSER\b/i);
    expect(header).toMatch(/\bPATH\b/i);
    expect(rows.length).toBeGreaterThanOrEqual(all.length);
    const peerRow = rows.find((row) => row.includes("swpeer"));
    expect(peerRow, result.stdout).toBeDefined();
    expect(peerRow).toMatch(/\broot\b/);
    expect(peerRow).toMatch(/\/usr\/bin\/python3/);
  });
});
