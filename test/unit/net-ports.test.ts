import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.ts";
import { MAX_PORT, parsePort, parsePortSpec } from "../../src/net/ports.ts";

function matching(spec: string, ports: number[]): number[] {
  const matcher = parsePortSpec(spec);
  return ports.filter((port) => matcher.matches(port));
}

describe("parsePortSpec", () => {
  it("a single number matches only itself", () => {
    expect(matching("25", [24, 25, 26])).toEqual([25]);
    expect(parsePortSpec(" 25 ").describe()).toBe("25");
  });

  it("accepts the whole range 0..65535", () => {
    expect(matching("0", [0, 1])).toEqual([0]);
    expect(matching(String(MAX_PORT), [65534, 65535])).toEqual([65535]);
    expect(matching("0-65535", [0, 1, 65535])).toEqual([0, 1, 65535]);
  });

  it("ranges are inclusive", () => {
    expect(matching("1000-2000", [999, 1000, 1500, 2000, 2001])).toEqual([1000, 1500, 2000]);
    expect(matching("7-7", [6, 7, 8])).toEqual([7]);
  });

  it("comma lists mix numbers, ranges and names", () => {
    const spec = parsePortSpec("80, 443,8000-8080,ssh");
    expect([22, 80, 443, 444, 8000, 8080, 8081].filter((p) => spec.matches(p))).toEqual([
      22, 80, 443, 8000, 8080,
    ]);
    expect(spec.describe()).toBe("80,443,8000-8080,ssh(22)");
  });

  it("service names and aliases, any case", () => {
    expect(matching("smtp", [25, 587])).toEqual([25]);
    expect(matching("www", [80])).toEqual([80]);
    expect(matching("PostgreSQL", [5432])).toEqual([5432]);
    expect(matching("postgres", [5432])).toEqual([5432]);
    expect(matching("domain", [53])).toEqual([53]);
  });

  it("a name matches its TCP and UDP ports unless a protocol is given", () => {
    // Port 21 is ftp over TCP and fsp over UDP.
    expect(parsePortSpec("fsp").matches(21)).toBe(true);
    expect(parsePortSpec("ntp", "udp").matches(123)).toBe(true);
    expect(() => parsePortSpec("ntp", "tcp")).toThrow(/unknown port "ntp"/);
  });

  it("* matches every port", () => {
    expect(matching("*", [0, 25, 65535])).toEqual([0, 25, 65535]);
  });

  it.each([
    ["", /empty port specification/],
    ["  ", /empty port specification/],
    ["65536", /invalid port "65536": ports are numbers from 0 to 65535/],
    ["99999999999999999999999", /ports are numbers from 0 to 65535/],
    ["1-70000", /invalid port "1-70000"/],
    ["2000-1000", /invalid port range "2000-1000"/],
    ["80,,443", /empty item/],
    ["80,", /empty item/],
    ["-5", /unknown port "-5"/],
    ["1000-", /unknown port "1000-"/],
    ["25.5", /unknown port "25.5"/],
    ["smpt", /unknown port "smpt": expected a port number, range or service name \(e\.g\./],
    ["0x19", /unknown port "0x19"/],
  ])("rejects %j with a one-line UsageError", (text, message) => {
    let caught: unknown;
    try {
      parsePortSpec(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).exitCode).toBe(2);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toContain("\n");
  });
});

describe("parsePort", () => {
  it("reads a number or a service name", () => {
    expect(parsePort("8080")).toBe(8080);
    expect(parsePort("https")).toBe(443);
    expect(parsePort("ntp")).toBe(123);
    expect(parsePort("ntp", "udp")).toBe(123);
  });

  it("rejects anything else", () => {
    expect(() => parsePort("65536")).toThrow(UsageError);
    expect(() => parsePort("80-90")).toThrow(/unknown port "80-90"/);
    expect(() => parsePort("ntp", "tcp")).toThrow(UsageError);
  });
});
