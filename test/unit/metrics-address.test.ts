import { describe, expect, test } from "vitest";
import { parseMetricsAddress, serveMetrics } from "../../src/daemon/metrics-server.ts";
import { ConfigError, parseConfig } from "../../src/daemon/config.ts";

describe("metrics address", () => {
  test.each([
    ["127.0.0.1:9464", { hostname: "127.0.0.1", port: 9464 }],
    ["localhost:1", { hostname: "localhost", port: 1 }],
    ["[::1]:65535", { hostname: "::1", port: 65535 }],
    [":9464", { hostname: "127.0.0.1", port: 9464 }],
  ])("%s is served on %j", (address, expected) => {
    expect(parseMetricsAddress(address)).toEqual(expected);
  });

  test.each([
    ["127.0.0.1:99999", "port 99999 is out of range"],
    ["127.0.0.1:0", "port 0 is out of range"],
    ["127.0.0.1:123456", "must be"],
    ["9464", "must be"],
    ["127.0.0.1", "must be"],
    ["::1:9464", "an IPv6 host goes in brackets"],
    ["[::1:9464", "must be"],
    ["a b:9464", "must be"],
  ])("%s is refused: %s", (address, why) => {
    expect(parseMetricsAddress(address)).toEqual(expect.stringContaining(why));
  });

  test("the configuration names the file, the line and the key", () => {
    const text = "interval = 1\nmetrics = \"127.0.0.1:99999\"\n";
    expect(() => parseConfig(text, "f.toml")).toThrow(ConfigError);
    expect(() => parseConfig(text, "f.toml")).toThrow(/^f\.toml:2: metrics: port 99999 is out of range: must be "HOST:PORT" with a port from 1 to 65535/);
  });

  test("a port that is taken: one line in words, exit 2", () => {
    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    try {
      const address = `127.0.0.1:${taken.port}`;
      expect(() => serveMetrics(address, () => "")).toThrow(`cannot serve metrics on ${address}: the port is in use`);
      try {
        serveMetrics(address, () => "");
      } catch (err) {
        expect((err as { exitCode?: number }).exitCode).toBe(2);
      }
    } finally {
      taken.stop(true);
    }
  });
});
