/**
 * The OTLP logs sink against a real HTTP receiver on 127.0.0.1: the path, the content type and
 * the JSON shape of an OTLP/HTTP ExportLogsServiceRequest (resource, scope, log records with
 * time, severity, body and attributes); retries like the webhook.
 */
import { describe, expect, test } from "vitest";
import os from "node:os";
import { createSink, parseSinkSpec } from "../../src/outputs/sink-spec.ts";
import { actionRecord, ruleActionRecord, type SinkRecord } from "../../src/outputs/sink-record.ts";
import { UsageError } from "../../src/errors.ts";
import { drain, waitFor } from "./helpers/waits.ts";
import { endpointToJson } from "../../src/format/endpoint-json.ts";
import { NO_COUNTERS, endpoint as anEndpoint, namedProcess } from "../support/endpoints.ts";

interface Received {
  path: string;
  type: string | null;
  body: any;
}

function collector(port = 0, failFirst = 0) {
  const received: Received[] = [];
  let requests = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(req) {
      if (++requests <= failFirst) return new Response("busy", { status: 503 });
      received.push({ path: new URL(req.url).pathname, type: req.headers.get("content-type"), body: await req.json() });
      return Response.json({});
    },
  });
  return { port: server.port!, received, stop: () => server.stop(true) };
}

const endpoint = anEndpoint({
  localAddress: "10.0.0.5", localPort: 41000, remoteAddress: "93.184.216.34", remotePort: 25, inode: 123, uid: 1000, user: "alice", ...NO_COUNTERS,
  receiveQueue: null, sendQueue: null, cookie: null, process: namedProcess(4242, "curl", { cmdline: "curl smtp://x", uid: 1000, user: "alice" }), pids: [4242],
});

const attrs = (list: { key: string; value: Record<string, unknown> }[]) => Object.fromEntries(list.map((a) => [a.key, a.value]));

describe("otlp sink", () => {
  test("POSTs OTLP/HTTP JSON to /v1/logs: resource, scope, one log record per record", async () => {
    const c = collector();
    const sink = createSink(parseSinkSpec(`otlp:http://127.0.0.1:${c.port}`));
    expect(sink.name).toBe(`otlp:http://127.0.0.1:${c.port}/v1/logs`);
    const time = new Date("2026-12-07T10:00:00.123Z");
    const alert: SinkRecord = { ...ruleActionRecord({ rule: "smtp-guard", action: "alert", reason: "curl talks SMTP", severity: "critical" }, time), endpoint: endpointToJson(endpoint), process: endpoint.process };
    const closed = actionRecord({ requestedBy: "smtp-guard", action: "close", outcome: "closed", message: "closed", endpoint }, time);
    const log: SinkRecord = { time: time.toISOString(), kind: "log", message: "started", severity: "info" };
    sink.write([alert, closed, log]);
    await waitFor("one request", () => c.received.length >= 1);
    const { path, type, body } = c.received[0]!;
    expect(path).toBe("/v1/logs");
    expect(type).toBe("application/json");
    expect(Object.keys(body)).toEqual(["resourceLogs"]);
    expect(body.resourceLogs).toHaveLength(1);
    const rl = body.resourceLogs[0];
    expect(attrs(rl.resource.attributes)).toMatchObject({ "service.name": { stringValue: "sockwarden" }, "host.name": { stringValue: os.hostname() } });
    expect(rl.scopeLogs).toHaveLength(1);
    expect(rl.scopeLogs[0].scope.name).toBe("sockwarden");
    const records = rl.scopeLogs[0].logRecords;
    expect(records).toHaveLength(3);
    const [a, b, l] = records;
    expect(a.timeUnixNano).toBe("1796637600123000000");
    expect(typeof a.observedTimeUnixNano).toBe("string");
    expect(a).toMatchObject({ severityNumber: 18, severityText: "critical", body: { stringValue: "curl talks SMTP" } });
    expect(attrs(a.attributes)).toEqual({
      "sockwarden.kind": { stringValue: "alert" },
      "sockwarden.rule": { stringValue: "smtp-guard" },
      "sockwarden.state": { stringValue: "ESTABLISHED" },
      "network.transport": { stringValue: "tcp" },
      "network.type": { stringValue: "ipv4" },
      "network.local.address": { stringValue: "10.0.0.5" },
      "network.local.port": { intValue: "41000" },
      "network.peer.address": { stringValue: "93.184.216.34" },
      "network.peer.port": { intValue: "25" },
      "process.pid": { intValue: "4242" },
      "process.executable.name": { stringValue: "curl" },
      "process.executable.path": { stringValue: "/usr/bin/curl" },
      "process.command_line": { stringValue: "curl smtp://x" },
      "process.owner": { stringValue: "alice" },
    });
    expect(b).toMatchObject({ severityNumber: 9, severityText: "info" });
    expect(attrs(b.attributes)).toMatchObject({ "sockwarden.action": { stringValue: "close" }, "sockwarden.outcome": { stringValue: "closed" } });
    expect(l).toMatchObject({ severityNumber: 9, body: { stringValue: "started" }, attributes: [{ key: "sockwarden.kind", value: { stringValue: "log" } }] });
    await sink.close(1000);
    c.stop();
  });

  test("a path given is used as it is; a 503 is retried, in order", async () => {
    const c = collector(0, 2);
    const sink = createSink(parseSinkSpec(`otlp:http://127.0.0.1:${c.port}/custom/logs#backoffMs=20&maxBackoffMs=50&batchSize=2`));
    sink.write([1, 2, 3].map((n) => ({ time: new Date(0).toISOString(), kind: "log", message: `#${n}` }) as SinkRecord));
    // The collector holds the third record before its reply reaches the sink, so what the sink
    // counts is read once the sink has drained, not once the collector has everything.
    await drain(sink);
    expect(c.received.map((r) => r.path)).toEqual(["/custom/logs", "/custom/logs"]);
    expect(c.received.flatMap((r) => r.body.resourceLogs[0].scopeLogs[0].logRecords.map((x: any) => x.body.stringValue))).toEqual(["#1", "#2", "#3"]);
    expect(sink.stats()).toMatchObject({ written: 3, dropped: 0, failures: 1 });
    await sink.close(1000);
    c.stop();
  });

  test("bad specs are one line", () => {
    expect(() => parseSinkSpec("otlp:")).toThrow(UsageError);
    expect(() => parseSinkSpec("otlp:grpc://127.0.0.1:4317")).toThrow(/otlp needs an http:\/\/ or https:\/\/ URL/);
    expect(() => parseSinkSpec("otlp:http://127.0.0.1:4318#nope=1")).toThrow(/unknown option "nope"/);
  });
});
