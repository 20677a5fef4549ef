import { describe, expect, test } from "vitest";
import { createSink, parseSinkSpec } from "../../src/outputs/sink-spec.ts";
import { StdoutSink } from "../../src/outputs/stdout-sink.ts";
import { FileSink } from "../../src/outputs/file-sink.ts";
import { SyslogSink } from "../../src/outputs/syslog-sink.ts";
import { WebhookSink } from "../../src/outputs/webhook-sink.ts";
import { UsageError } from "../../src/errors.ts";

describe("sink specs", () => {
  test("the forms", () => {
    expect(parseSinkSpec("stdout")).toEqual({ type: "stdout", format: "human" });
    expect(parseSinkSpec("stdout:ndjson")).toEqual({ type: "stdout", format: "ndjson" });
    expect(parseSinkSpec("file:/var/log/sockwarden/alerts.ndjson")).toEqual({ type: "file", path: "/var/log/sockwarden/alerts.ndjson" });
    expect(parseSinkSpec("file:/tmp/a.ndjson?maxBytes=10485760&keep=5")).toEqual({ type: "file", path: "/tmp/a.ndjson", maxBytes: 10485760, keep: 5 });
    expect(parseSinkSpec("file:/tmp/a?maxBytes=10M")).toMatchObject({ maxBytes: 10 * 1024 * 1024 });
    expect(parseSinkSpec("file:/tmp/a?maxBytes=512KiB")).toMatchObject({ maxBytes: 512 * 1024 });
    expect(parseSinkSpec("syslog")).toEqual({ type: "syslog", target: "local" });
    expect(parseSinkSpec("syslog:/run/other.sock")).toEqual({ type: "syslog", target: "local", socketPath: "/run/other.sock" });
    expect(parseSinkSpec("syslog:udp://127.0.0.1:514")).toEqual({ type: "syslog", target: "udp://127.0.0.1:514" });
    expect(parseSinkSpec("syslog:tcp://[::1]:601?facility=local0&appName=warden&format=rfc5424")).toEqual({
      type: "syslog", target: "tcp://[::1]:601", facility: "local0", appName: "warden", format: "rfc5424",
    });
    expect(parseSinkSpec("syslog?facility=auth")).toEqual({ type: "syslog", target: "local", facility: "auth" });
    // Each queue's bound in bytes.
    expect(parseSinkSpec("stdout?bufferBytes=8M")).toEqual({ type: "stdout", format: "human", maxBufferedBytes: 8 << 20 });
    expect(parseSinkSpec("stdout:ndjson?bufferBytes=64K")).toEqual({ type: "stdout", format: "ndjson", maxBufferedBytes: 64 << 10 });
    expect(parseSinkSpec("file:/tmp/a?queueBytes=32M")).toMatchObject({ queueBytes: 32 << 20 });
    expect(parseSinkSpec("syslog?queueBytes=1M")).toMatchObject({ queueBytes: 1 << 20 });
    expect(parseSinkSpec("webhook:http://h/x#queueBytes=2M")).toMatchObject({ queueBytes: 2 << 20 });
    expect(parseSinkSpec("webhook:http://127.0.0.1:8080/hook")).toEqual({ type: "webhook", url: "http://127.0.0.1:8080/hook" });
    expect(parseSinkSpec("webhook:https://h.example/a?token=x&b=1#queueSize=50&timeoutMs=2000&maxRetries=3&backoffMs=100")).toEqual({
      type: "webhook", url: "https://h.example/a?token=x&b=1", queueSize: 50, timeoutMs: 2000, maxRetries: 3, backoff: { initialMs: 100 },
    });
  });

  test("bad specs are usage errors that show examples", () => {
    const bad = [
      "", "stderr", "stdout:json", "file:", "file:/a?keep=0", "file:/a?maxBytes=lots", "file:/a?colour=1", "syslog:udp://h",
      "syslog:http://h:1", "syslog?facility=nope", "syslog?format=rfc1", "webhook:", "webhook:ftp://h/x", "webhook:nota url",
      "webhook:http://h/#queueSize=0", "webhook:http://h/#queueSize",
      "stdout:", "stdout?colour=1", "file:/a?queueBytes=1K", "file:/a?queueBytes=0", "syslog?queueBytes=lots", "webhook:http://h/#queueBytes=65535",
    ];
    for (const spec of bad) {
      let err: unknown;
      try {
        parseSinkSpec(spec);
      } catch (e) {
        err = e;
      }
      expect(err, spec).toBeInstanceOf(UsageError);
      expect((err as Error).message, spec).toMatch(/^bad sink ".*": .* \(examples: stdout, stdout:ndjson, file:.*webhook:https/);
    }
  });

  test("each spec makes its sink", async () => {
    const sinks = [
      createSink(parseSinkSpec("stdout:ndjson")),
      createSink(parseSinkSpec("file:/tmp/sw-spec-never-written.ndjson")),
      createSink(parseSinkSpec("syslog:udp://127.0.0.1:9")),
      createSink(parseSinkSpec("webhook:http://127.0.0.1:9/x?t=secret#queueSize=5")),
    ];
    expect(sinks[0]).toBeInstanceOf(StdoutSink);
    expect(sinks[1]).toBeInstanceOf(FileSink);
    expect(sinks[2]).toBeInstanceOf(SyslogSink);
    expect(sinks[3]).toBeInstanceOf(WebhookSink);
    expect(sinks.map((s) => s.name)).toEqual(["stdout:ndjson", "file:/tmp/sw-spec-never-written.ndjson", "syslog:udp://127.0.0.1:9", "webhook:http://127.0.0.1:9/x"]);
    for (const s of sinks) await s.close(100);
  });

  test("each sink's queue bound, default or given, is in its stats", async () => {
    const made = ["stdout", "stdout:ndjson?bufferBytes=1M", "file:/tmp/sw-spec-never-written.ndjson", "file:/tmp/sw-spec-never-written.ndjson?queueBytes=2M",
      "syslog:udp://127.0.0.1:9", "syslog:udp://127.0.0.1:9?queueBytes=3M", "webhook:http://127.0.0.1:9/x", "webhook:http://127.0.0.1:9/x#queueBytes=5M"].map((s) => createSink(parseSinkSpec(s)));
    expect(made.map((s) => s.stats().maxQueuedBytes / (1 << 20))).toEqual([4, 1, 16, 2, 4, 3, 8, 5]);
    for (const s of made) await s.close(100);
  });
});
