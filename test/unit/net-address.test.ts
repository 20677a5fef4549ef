import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.ts";
import {
  canonicalAddress,
  formatHostPort,
  formatIPv4,
  formatIPv6,
  isLoopback,
  isPrivate,
  isUnspecified,
  parseAddressFilter,
  parseCidr,
  parseIP,
} from "../../src/net/address.ts";

function v6(text: string): Uint8Array {
  const ip = parseIP(text);
  if (ip === null || ip.family !== 6) throw new Error(`test setup: ${text} is not IPv6`);
  return ip.bytes;
}

describe("formatIPv4", () => {
  it("formats a dotted quad at an offset", () => {
    expect(formatIPv4(new Uint8Array([127, 0, 0, 1]))).toBe("127.0.0.1");
    expect(formatIPv4(new Uint8Array([9, 9, 192, 168, 255, 0]), 2)).toBe("192.168.255.0");
  });

  it("refuses a buffer too short for the offset", () => {
    expect(() => formatIPv4(new Uint8Array(5), 2)).toThrow(RangeError);
  });
});

describe("formatIPv6 (RFC 5952, as glibc inet_ntop and ss -n print)", () => {
  // Expected texts were checked against glibc's inet_ntop.
  const cases: Array<[string, string]> = [
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["fe80:0:0:0:0:0:0:1", "fe80::1"],
    ["0:0:0:0:0:ffff:7f00:1", "::ffff:127.0.0.1"],
    ["::ffff:0.0.0.0", "::ffff:0.0.0.0"],
    ["0:0:0:0:0:ffff:0:1", "::ffff:0.0.0.1"],
    ["::1.2.3.4", "::1.2.3.4"],
    ["::0.1.0.0", "::0.1.0.0"],
    ["::2", "::2"],
    ["::ffff:0:0:0", "::ffff:0:0:0"],
    ["2001:DB8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"],
    ["1:0:0:1:0:0:0:1", "1:0:0:1::1"],
    ["1:0:0:0:1:0:0:1", "1::1:0:0:1"],
    ["0:0:1:0:0:0:0:1", "0:0:1::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"],
    ["0:1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"],
    ["1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"],
    ["2001:db8::ffff:1.2.3.4", "2001:db8::ffff:102:304"],
    ["::fffe:1.2.3.4", "::fffe:102:304"],
    ["64:ff9b::1.2.3.4", "64:ff9b::102:304"],
    ["2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::8a2e:370:7334"],
  ];
  it.each(cases)("%s -> %s", (input, expected) => {
    expect(formatIPv6(v6(input))).toBe(expected);
  });

  it("reads at an offset inside a larger buffer", () => {
    const buffer = new Uint8Array(20);
    buffer.set(v6("fe80::1"), 4);
    expect(formatIPv6(buffer, 4)).toBe("fe80::1");
    expect(() => formatIPv6(buffer, 5)).toThrow(RangeError);
  });

  it("round-trips random addresses through parseIP", () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let n = 0; n < 2000; n++) {
      const bytes = new Uint8Array(16);
      // Many zero groups, so compression and ties are exercised.
      for (let i = 0; i < 8; i++) {
        if (random() % 2 === 0) continue;
        bytes[2 * i] = random() & 0xff;
        bytes[2 * i + 1] = random() & 0xff;
      }
      const text = formatIPv6(bytes);
      expect(parseIP(text)?.bytes).toEqual(bytes);
      expect(text).not.toMatch(/:::|[A-F]|(^|:)0[0-9a-f]/);
    }
  });
});

describe("parseIP", () => {
  it("parses strict IPv4", () => {
    const expected = { family: 4, bytes: new Uint8Array([192, 168, 1, 10]) };
    expect(parseIP("192.168.1.10")).toEqual(expected);
    expect(parseIP("0.0.0.0")?.bytes).toEqual(new Uint8Array(4));
    expect(parseIP("255.255.255.255")?.bytes).toEqual(new Uint8Array([255, 255, 255, 255]));
  });

  it.each([
    "01.2.3.4",
    "1.2.3.04",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "1..3.4",
    "1.2.3.-4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "0x7f.0.0.1",
    "",
  ])("rejects IPv4 %j", (text) => {
    expect(parseIP(text)).toBeNull();
  });

  it("parses every IPv6 textual form", () => {
    const loopback = new Uint8Array(16);
    loopback[15] = 1;
    expect(parseIP("::1")).toEqual({ family: 6, bytes: loopback });
    expect(parseIP("0:0:0:0:0:0:0:1")?.bytes).toEqual(loopback);
    expect(parseIP("0000:0000:0000:0000:0000:0000:0000:0001")?.bytes).toEqual(loopback);
    expect(parseIP("[::1]")?.bytes).toEqual(loopback);
    expect(parseIP("::ffff:10.0.0.5")?.bytes).toEqual(
      new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 5]),
    );
    const embedded = parseIP("1:2:3:4:5:6:1.2.3.4");
    expect(embedded?.bytes.subarray(12)).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(parseIP("FE80::ABCD")?.bytes.subarray(14)).toEqual(new Uint8Array([0xab, 0xcd]));
    expect(parseIP("1::")?.bytes[1]).toBe(1);
    expect(parseIP("::")?.bytes).toEqual(new Uint8Array(16));
  });

  it("keeps a zone apart from the address, with or without brackets", () => {
    expect(parseIP("fe80::1%eth0")).toEqual({ family: 6, bytes: v6("fe80::1"), zone: "eth0" });
    expect(parseIP("[fe80::1%3]")?.zone).toBe("3");
    expect(parseIP("fe80::1%")).toBeNull();
    expect(parseIP("fe80::1%eth 0")).toBeNull();
    expect(parseIP("10.0.0.1%eth0")).toBeNull();
  });

  it.each([
    ":::",
    "1:::2",
    "1::2::3",
    ":1::",
    "::1:",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7::8",
    "12345::",
    "g::1",
    "::1.2.3.4:5",
    "1.2.3.4::",
    "::256.1.1.1",
    "::01.1.1.1",
    "1:2:3:4:5:6:7:1.2.3.4",
    "[::1",
    "::1]",
    "[10.0.0.1]",
  ])("rejects IPv6 %j", (text) => {
    expect(parseIP(text)).toBeNull();
  });

  it("accepts :: standing for a single zero group", () => {
    expect(formatIPv6(v6("1:2:3:4:5:6::8"))).toBe("1:2:3:4:5:6:0:8");
  });
});

describe("canonicalAddress and formatHostPort", () => {
  it("canonicalises the way ss prints", () => {
    expect(canonicalAddress("0:0::FFFF:7F00:0001")).toBe("::ffff:127.0.0.1");
    expect(canonicalAddress("[FE80::0001%eth0]")).toBe("fe80::1%eth0");
    expect(canonicalAddress("10.0.0.1")).toBe("10.0.0.1");
    expect(canonicalAddress("nope")).toBeNull();
  });

  it("brackets IPv6 only", () => {
    expect(formatHostPort("::1", 22)).toBe("[::1]:22");
    expect(formatHostPort("10.0.0.1", 22)).toBe("10.0.0.1:22");
    expect(formatHostPort("0.0.0.0", "*")).toBe("0.0.0.0:*");
  });
});

describe("parseCidr", () => {
  it("matches inside the block and not outside", () => {
    const block = parseCidr("10.0.0.0/8");
    expect(block.matches("10.255.1.2")).toBe(true);
    expect(block.matches("11.0.0.0")).toBe(false);
    expect(block.matches("9.255.255.255")).toBe(false);
    expect(block.toString()).toBe("10.0.0.0/8");
  });

  it("handles prefixes that do not end on a byte", () => {
    const block = parseCidr("172.16.0.0/12");
    expect(block.matches("172.31.255.255")).toBe(true);
    expect(block.matches("172.32.0.0")).toBe(false);
    expect(block.matches("172.15.255.255")).toBe(false);
    const v6Block = parseCidr("fe80::/10");
    expect(v6Block.matches("febf::1")).toBe(true);
    expect(v6Block.matches("fec0::1")).toBe(false);
  });

  it("/0 matches everything of its family", () => {
    const any4 = parseCidr("0.0.0.0/0");
    expect(any4.matches("1.2.3.4")).toBe(true);
    expect(any4.matches("255.255.255.255")).toBe(true);
    expect(any4.matches("::ffff:8.8.8.8")).toBe(true);
    expect(any4.matches("2001:db8::1")).toBe(false);
    const any6 = parseCidr("::/0");
    expect(any6.matches("2001:db8::1")).toBe(true);
    expect(any6.matches("::")).toBe(true);
    expect(any6.matches("1.2.3.4")).toBe(false);
  });

  it("/32 and /128 are single hosts, as is a bare address", () => {
    const host = parseCidr("192.0.2.7/32");
    expect(host.matches("192.0.2.7")).toBe(true);
    expect(host.matches("192.0.2.6")).toBe(false);
    const host6 = parseCidr("2001:db8::7/128");
    expect(host6.matches("2001:db8:0:0:0:0:0:7")).toBe(true);
    expect(host6.matches("2001:db8::6")).toBe(false);
    const bare = parseCidr("2001:DB8::7");
    expect(bare.prefixLength).toBe(128);
    expect(bare.toString()).toBe("2001:db8::7");
  });

  it("IPv4 blocks match IPv4-mapped IPv6 addresses; IPv6 blocks do not match plain IPv4", () => {
    expect(parseCidr("10.0.0.0/8").matches("::ffff:10.0.0.5")).toBe(true);
    expect(parseCidr("10.0.0.0/8").matches("::ffff:11.0.0.5")).toBe(false);
    expect(parseCidr("10.0.0.5/32").matches("::ffff:a00:5")).toBe(true);
    // ::10.0.0.5 is IPv4-compatible, not mapped: a different address.
    expect(parseCidr("10.0.0.0/8").matches("::10.0.0.5")).toBe(false);
    expect(parseCidr("::ffff:0:0/96").matches("::ffff:10.0.0.5")).toBe(true);
    expect(parseCidr("::ffff:0:0/96").matches("10.0.0.5")).toBe(false);
  });

  it("clears host bits", () => {
    const block = parseCidr("192.168.1.77/24");
    expect(block.network).toBe("192.168.1.0");
    expect(block.toString()).toBe("192.168.1.0/24");
    expect(block.matches("192.168.1.1")).toBe(true);
  });

  it("compares zones only when both sides have one", () => {
    const block = parseCidr("fe80::%eth0/64");
    expect(block.matches("fe80::1")).toBe(true);
    expect(block.matches("fe80::1%eth0")).toBe(true);
    expect(block.matches("fe80::1%eth1")).toBe(false);
  });

  it("never matches text that is not an address", () => {
    expect(parseCidr("0.0.0.0/0").matches("*")).toBe(false);
    expect(parseCidr("::/0").matches("")).toBe(false);
  });

  it.each([
    ["10.0.0.0/33", /prefix length must be a number from 0 to 32/],
    ["::/129", /from 0 to 128/],
    ["10.0.0.0/", /prefix length/],
    ["10.0.0.0/-1", /prefix length/],
    ["10.0.0.0/8/8", /prefix length/],
    ["10.0.0.0/ 8", /prefix length/],
    ["10.0.0/8", /"10.0.0" is not an IPv4 or IPv6 address/],
    ["example.com/24", /not an IPv4 or IPv6 address/],
    ["/8", /not an IPv4 or IPv6 address/],
  ])("rejects %j with a UsageError naming it", (text, message) => {
    let caught: unknown;
    try {
      parseCidr(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).exitCode).toBe(2);
    expect((caught as UsageError).message).toContain(`"${text}"`);
    expect((caught as UsageError).message).toMatch(message);
  });
});

describe("address classes", () => {
  it("isUnspecified", () => {
    expect(isUnspecified("0.0.0.0")).toBe(true);
    expect(isUnspecified("::")).toBe(true);
    expect(isUnspecified("::ffff:0.0.0.0")).toBe(true);
    expect(isUnspecified("::1")).toBe(false);
    expect(isUnspecified("0.0.0.1")).toBe(false);
    expect(isUnspecified("*")).toBe(false);
  });

  it("isLoopback", () => {
    expect(isLoopback("127.0.0.1")).toBe(true);
    expect(isLoopback("127.255.0.9")).toBe(true);
    expect(isLoopback("::1")).toBe(true);
    expect(isLoopback("::ffff:127.0.0.53")).toBe(true);
    expect(isLoopback("::")).toBe(false);
    expect(isLoopback("::2")).toBe(false);
    expect(isLoopback("128.0.0.1")).toBe(false);
    expect(isLoopback("localhost")).toBe(false);
  });

  it.each([
    ["10.1.2.3", true],
    ["172.16.0.1", true],
    ["172.31.255.255", true],
    ["172.32.0.1", false],
    ["172.15.0.1", false],
    ["192.168.0.1", true],
    ["192.169.0.1", false],
    ["100.64.0.1", true],
    ["100.127.255.255", true],
    ["100.128.0.1", false],
    ["169.254.1.1", true],
    ["127.0.0.1", true],
    ["8.8.8.8", false],
    ["::ffff:192.168.1.1", true],
    ["::ffff:8.8.8.8", false],
    ["fe80::1", true],
    ["febf::1", true],
    ["fec0::1", false],
    ["fc00::1", true],
    ["fd12:3456::1", true],
    ["fe00::1", false],
    ["::1", true],
    ["2001:4860:4860::8888", false],
    ["garbage", false],
  ])("isPrivate(%s) is %s", (address, expected) => {
    expect(isPrivate(address)).toBe(expected);
  });
});

describe("parseAddressFilter", () => {
  it("an address alone matches that address on any port", () => {
    const filter = parseAddressFilter("10.0.0.5");
    expect(filter.matches("10.0.0.5", 1)).toBe(true);
    expect(filter.matches("::ffff:10.0.0.5", 443)).toBe(true);
    expect(filter.matches("10.0.0.6", 1)).toBe(false);
    expect(filter.describe()).toBe("10.0.0.5");
  });

  it("IPv6 with and without brackets", () => {
    expect(parseAddressFilter("::1").matches("::1", 5)).toBe(true);
    expect(parseAddressFilter("[::1]").matches("::1", 5)).toBe(true);
    const withPort = parseAddressFilter("[::1]:22");
    expect(withPort.matches("::1", 22)).toBe(true);
    expect(withPort.matches("::1", 23)).toBe(false);
    expect(withPort.describe()).toBe("::1 port 22");
    // A full IPv6 address whose last group looks like a port is still an address.
    expect(parseAddressFilter("fe80::1:22").matches("fe80::1:22", 80)).toBe(true);
  });

  it("CIDRs, alone, with a port, and in brackets", () => {
    expect(parseAddressFilter("10.0.0.0/8").matches("10.9.9.9", 80)).toBe(true);
    const cidrPort = parseAddressFilter("10.0.0.0/8:25");
    expect(cidrPort.matches("10.1.1.1", 25)).toBe(true);
    expect(cidrPort.matches("10.1.1.1", 26)).toBe(false);
    expect(cidrPort.matches("11.1.1.1", 25)).toBe(false);
    expect(cidrPort.describe()).toBe("10.0.0.0/8 port 25");
    expect(parseAddressFilter("2001:db8::/32").matches("2001:db8:1::1", 1)).toBe(true);
    const bracketed = parseAddressFilter("[2001:db8::/32]:443");
    expect(bracketed.matches("2001:db8::9", 443)).toBe(true);
    expect(bracketed.matches("2001:db9::9", 443)).toBe(false);
  });

  it("ports alone: bare, after a colon, ranges, lists and service names", () => {
    const bare = parseAddressFilter("25");
    expect(bare.matches("1.2.3.4", 25)).toBe(true);
    expect(bare.matches("::1", 25)).toBe(true);
    expect(bare.matches("1.2.3.4", 26)).toBe(false);
    expect(bare.describe()).toBe("port 25");
    expect(parseAddressFilter(":25").matches("::", 25)).toBe(true);
    const smtp = parseAddressFilter(":smtp");
    expect(smtp.matches("10.0.0.1", 25)).toBe(true);
    expect(smtp.describe()).toBe("port smtp(25)");
    const range = parseAddressFilter("1000-2000");
    expect(range.matches("10.0.0.1", 1000)).toBe(true);
    expect(range.matches("10.0.0.1", 2000)).toBe(true);
    expect(range.matches("10.0.0.1", 2001)).toBe(false);
    expect(parseAddressFilter(":1000-2000").matches("10.0.0.1", 1500)).toBe(true);
    expect(parseAddressFilter(":80,443").matches("10.0.0.1", 443)).toBe(true);
  });

  it("address:port for IPv4 and a wildcard address", () => {
    const filter = parseAddressFilter("192.168.1.5:443");
    expect(filter.matches("192.168.1.5", 443)).toBe(true);
    expect(filter.matches("192.168.1.5", 80)).toBe(false);
    expect(filter.matches("192.168.1.6", 443)).toBe(false);
    const any = parseAddressFilter("*:ssh");
    expect(any.matches("::", 22)).toBe(true);
    expect(any.describe()).toBe("port ssh(22)");
    expect(parseAddressFilter("*").describe()).toBe("any address and port");
  });

  it("service names can be limited to one protocol", () => {
    // 21 is ftp over TCP but fsp over UDP in the table.
    expect(parseAddressFilter(":fsp").matches("1.1.1.1", 21)).toBe(true);
    expect(() => parseAddressFilter(":fsp", "tcp")).toThrow(UsageError);
  });

  it.each([
    ["", /empty address filter/],
    ["example.com", /"example.com" is neither an address nor a port or service name/],
    ["10.0.0", /not a valid IPv4 address/],
    ["10.0.0.1:", /a port is missing/],
    ["10.0.0.1:99999", /invalid port "99999"/],
    ["10.0.0.1:nosuchservice", /unknown port "nosuchservice"/],
    [":::22", /written in brackets/],
    ["2001:db8::1/64:443", /written in brackets/],
    ["[::1", /without its "\]"/],
    ["[::1]22", /after "\]" comes ":"/],
    ["[::1]:", /after "\]" comes ":"/],
    ["[example]:80", /"example" is not an IP address/],
    ["10.0.0.0/40", /prefix length must be a number from 0 to 32/],
    ["10.0.0.0/40:25", /prefix length/],
    ["2000-1000", /the first port must not exceed the second/],
    ["70000", /ports are numbers from 0 to 65535/],
    ["1.2.3.4.5:80", /"1.2.3.4.5" is not an IP address/],
  ])("rejects %j with a UsageError", (text, message) => {
    let caught: unknown;
    try {
      parseAddressFilter(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toContain("\n");
  });

  it("shows the accepted forms with examples when the form is wrong", () => {
    expect(() => parseAddressFilter("example.com")).toThrow(
      /e\.g\. 10\.0\.0\.5, 10\.0\.0\.0\/8, 25, :smtp/,
    );
  });
});
