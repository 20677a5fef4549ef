import { describe, expect, it } from "vitest";
import { describeAll, parseServices, render } from "../../scripts/gen-services.ts";
import { SERVICES_TABLE } from "../../src/net/services-data.ts";
import { describePort, serviceName, servicePort } from "../../src/net/services.ts";

describe("serviceName", () => {
  it.each([
    [22, "tcp", "ssh"],
    [25, "tcp", "smtp"],
    [53, "udp", "domain"],
    [80, "tcp", "http"],
    [123, "udp", "ntp"],
    [443, "tcp", "https"],
    [443, "udp", "https"],
    [5432, "tcp", "postgresql"],
    [6379, "tcp", "redis"],
    [21, "udp", "fsp"],
    [514, "udp", "syslog"],
  ] as const)("%i/%s is %s", (port, protocol, name) => {
    expect(serviceName(port, protocol)).toBe(name);
  });

  it("is null for unnamed ports and for a protocol the name lacks", () => {
    expect(serviceName(1, "udp")).toBeNull();
    expect(serviceName(123, "tcp")).toBeNull();
    expect(serviceName(65000, "tcp")).toBeNull();
    expect(serviceName(-1, "tcp")).toBeNull();
  });

  it("keeps the first line for a port, as getservbyport does", () => {
    // 7000/tcp is bbs, 7000/udp afs3-fileserver; 514/tcp is shell although syslog is an alias.
    expect(serviceName(7000, "tcp")).toBe("bbs");
    expect(serviceName(7000, "udp")).toBe("afs3-fileserver");
    expect(serviceName(514, "tcp")).toBe("shell");
  });
});

describe("servicePort", () => {
  it("finds names and aliases in any case", () => {
    expect(servicePort("smtp")).toBe(25);
    expect(servicePort("mail")).toBe(25);
    expect(servicePort("WWW")).toBe(80);
    expect(servicePort("postgres")).toBe(5432);
    expect(servicePort("krb5", "udp")).toBe(88);
  });

  it("prefers TCP, then UDP, unless a protocol is given", () => {
    expect(servicePort("ntp")).toBe(123);
    expect(servicePort("ntp", "tcp")).toBeNull();
    expect(servicePort("ssh", "udp")).toBeNull();
    expect(servicePort("nosuchservice")).toBeNull();
  });

  it("an alias shared by two entries resolves to the first, as getservbyname does", () => {
    // "dicom" is an alias of acr-nema (104) and also the name of 11112/tcp.
    expect(servicePort("dicom", "tcp")).toBe(104);
  });
});

describe("describePort", () => {
  it("returns every entry for a port, TCP and UDP, with descriptions", () => {
    const entries = describePort(53);
    expect(entries.map((e) => `${e.name}/${e.protocol}`)).toEqual(["domain/tcp", "domain/udp"]);
    for (const entry of entries) expect(entry.description).toBe("Domain Name Server");
    const kerberos = describePort(88)[0];
    expect(kerberos?.aliases).toEqual(["kerberos5", "krb5", "kerberos-sec"]);
  });

  it("different names on one port are all listed", () => {
    expect(describePort(21).map((e) => e.name)).toEqual(["ftp", "fsp"]);
  });

  it("common uncommented services carry a hand-written description", () => {
    for (const port of [21, 23, 25, 67, 69, 873, 3306, 3389, 6379]) {
      expect(describePort(port)[0]?.description, `port ${port}`).not.toBe("");
    }
    expect(describePort(6379)[0]?.description).toMatch(/Redis/);
  });

  it("is empty for a port with no name, and the result cannot be changed", () => {
    expect(describePort(65001)).toEqual([]);
    expect(Object.isFrozen(describePort(22))).toBe(true);
    expect(Object.isFrozen(describePort(22)[0])).toBe(true);
  });
});

describe("embedded table", () => {
  it("has only TCP and UDP entries with valid ports and four fields", () => {
    expect(SERVICES_TABLE.length).toBeGreaterThan(250);
    for (const line of SERVICES_TABLE) {
      const fields = line.split("\t");
      expect(fields, line).toHaveLength(4);
      expect(fields[1], line).toMatch(/^[0-9]{1,5}\/(tcp|udp)$/);
      expect(Number(fields[1]?.split("/")[0])).toBeLessThanOrEqual(65535);
    }
  });
});

describe("generator", () => {
  const fixture = [
    "# Network services, Internet style",
    "",
    "tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer",
    "domain\t\t53/tcp\t\t\t\t# Domain Name Server",
    "domain\t\t53/udp",
    "smtp\t\t25/tcp\t\tmail",
    "shell\t\t514/tcp\t\tcmd syslog\t# no passwords used",
    "amqp\t\t5672/sctp",
    "rtmp\t\t1/ddp\t\t\t# Routing Table Maintenance Protocol",
    "oddity\t\t7777/tcp\t\t# spaces   and\ttabs",
  ].join("\n");

  it("keeps TCP and UDP lines with aliases and trailing comments", () => {
    const entries = parseServices(fixture);
    expect(entries.map((e) => `${e.name} ${e.port}/${e.protocol}`)).toEqual([
      "tcpmux 1/tcp",
      "domain 53/tcp",
      "domain 53/udp",
      "smtp 25/tcp",
      "shell 514/tcp",
      "oddity 7777/tcp",
    ]);
    expect(entries[3]?.aliases).toEqual(["mail"]);
    expect(entries[0]?.description).toBe("TCP port service multiplexer");
    expect(entries[5]?.description).toBe("spaces and tabs");
  });

  it("fills descriptions from the twin line, then the hand-written table", () => {
    const entries = parseServices(fixture);
    describeAll(entries);
    expect(entries[2]?.description).toBe("Domain Name Server");
    expect(entries[3]?.description).toBe("Simple Mail Transfer Protocol");
    expect(entries[4]?.description).toBe("Remote shell (rsh)");
  });

  it("renders lines the runtime table can read", () => {
    const entries = parseServices(fixture);
    describeAll(entries);
    const text = render(entries, "a fixture");
    expect(text).toContain('"smtp\\t25/tcp\\tmail\\tSimple Mail Transfer Protocol",');
    expect(text).toContain("export const SERVICES_TABLE");
  });

  it("refuses a malformed line", () => {
    expect(() => parseServices("broken line-without-port")).toThrow(/line 1/);
    expect(() => parseServices("big 70000/tcp")).toThrow(/out of range/);
  });
});
