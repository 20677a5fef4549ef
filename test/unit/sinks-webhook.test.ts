import { describe, expect, test } from "vitest";
import { WebhookSink, retryAfterMs } from "../../src/outputs/webhook-sink.ts";
import type { SinkRecord } from "../../src/outputs/sink-record.ts";
import { waitFor } from "./helpers/waits.ts";
import { track, waitWithoutTimers, withTestClock } from "./helpers/test-clock.ts";

const rec = (n: number): SinkRecord => ({ time: new Date(1_800_000_000_000 + n).toISOString(), kind: "alert", rule: "r", severity: "warning", message: `#${n}` });
const numbers = (records: SinkRecord[]) => records.map((r) => Number(r.message.slice(1)));

/** A webhook receiver on 127.0.0.1 that answers each POST with what `answer` says. */
function receiver(port: number, answer: (n: number) => number | "hang" = () => 200) {
  const batches: SinkRecord[][] = [];
  let requests = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(req) {
      const body = (await req.json()) as SinkRecord[];
      const a = answer(++requests);
      if (a === "hang") return new Promise<Response>(() => {});
      if (a >= 200 && a < 300) batches.push(body);
      return new Response(a >= 300 ? "try later" : "ok", { status: a });
    },
  });
  return {
    port: server.port!,
    batches,
    get requests() {
      return requests;
    },
    received: () => batches.flat(),
    stop: () => server.stop(true),
  };
}

/** A port that nothing listens on (for now). */
function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

const fast = { initialMs: 20, maxMs: 100 };

describe("webhook sink", () => {
  test("JSON arrays, in batches, with the record fields", async () => {
    const hook = receiver(0);
    const sink = new WebhookSink({ url: `http://127.0.0.1:${hook.port}/hook?token=secret`, batchSize: 3 });
    expect(sink.name).toBe(`webhook:http://127.0.0.1:${hook.port}/hook`);
    sink.write([rec(1), rec(2), rec(3), rec(4)]);
    await sink.flush(5000);
    expect(hook.batches.map(numbers)).toEqual([[1, 2, 3], [4]]);
    expect(hook.batches[0]![0]).toEqual(rec(1));
    expect(sink.stats()).toMatchObject({ written: 4, queued: 0, dropped: 0, failures: 0, lastError: null });
    await sink.close(1000);
    hook.stop();
  });

  test("down (not listening, then 503) for a while: every record arrives once, in order, when it is back", async () => {
    const port = freePort();
    const told: string[] = [];
    const sink = new WebhookSink({ url: `http://127.0.0.1:${port}/`, queueSize: 1000, batchSize: 7, backoff: fast, report: (_, m) => told.push(m) });
    const total = 200;
    let next = 1;
    const feed = async (upTo: number) => {
      for (; next <= upTo; next++) {
        sink.write([rec(next)]);
        if (next % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    };
    await feed(60);
    await waitFor("failed attempts", () => sink.stats().failures >= 1 && sink.stats().lastError !== null);
    expect(sink.stats().written).toBe(0);
    // Back, but answering 503 to its first five requests.
    const hook = receiver(port, (n) => (n <= 5 ? 503 : 200));
    await feed(140);
    await waitFor("some delivered", () => hook.received().length > 0);
    await feed(total);
    await sink.flush(10_000);
    expect(numbers(hook.received())).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(hook.batches.every((b) => b.length <= 7)).toBe(true);
    expect(hook.requests).toBe(hook.batches.length + 5);
    const s = sink.stats();
    expect(s).toMatchObject({ written: total, queued: 0, dropped: 0 });
    // Refused connections, then 503: two failure episodes, each reported once.
    expect(s.failures).toBe(2);
    expect(told).toHaveLength(2);
    expect(told[1]).toMatch(/HTTP 503/);
    await sink.close(1000);
    hook.stop();
  });

  test("with a queue too small for the outage, the oldest are dropped and the count is exact", async () => {
    const port = freePort();
    const sink = new WebhookSink({ url: `http://127.0.0.1:${port}/`, queueSize: 5, batchSize: 5, backoff: fast });
    for (let i = 1; i <= 30; i++) sink.write([rec(i)]);
    // Record 1 went out alone (and is being retried); 2..25 were pushed out by newer ones.
    expect(sink.stats()).toMatchObject({ queued: 6, dropped: 24 });
    await new Promise((r) => setTimeout(r, 100));
    const hook = receiver(port);
    await sink.flush(5000);
    const got = numbers(hook.received());
    expect(got).toEqual([1, 26, 27, 28, 29, 30]);
    expect(sink.stats()).toMatchObject({ written: 6, queued: 0, dropped: 24 });
    expect(sink.stats().dropped).toBe(30 - got.length);
    await sink.close(1000);
    hook.stop();
  });

  test("a 4xx refusal is not retried; the batch is counted as dropped and later ones go", async () => {
    const hook = receiver(0, (n) => (n === 1 ? 400 : 200));
    const sink = new WebhookSink({ url: `http://127.0.0.1:${hook.port}/`, batchSize: 2, backoff: fast });
    sink.write([rec(1), rec(2), rec(3)]);
    await sink.flush(5000);
    expect(hook.requests).toBe(2);
    expect(numbers(hook.received())).toEqual([3]);
    expect(sink.stats()).toMatchObject({ written: 1, dropped: 2, failures: 1 });
    expect(sink.stats().lastError).toMatch(/HTTP 400; records refused/);
    await sink.close(1000);
    hook.stop();
  });

  test("maxRetries gives a batch up after that many retries, counted", async () => {
    const hook = receiver(0, () => 500);
    const sink = new WebhookSink({ url: `http://127.0.0.1:${hook.port}/`, maxRetries: 2, backoff: fast });
    sink.write([rec(1), rec(2)]);
    await sink.flush(5000);
    expect(hook.requests).toBe(3);
    expect(sink.stats()).toMatchObject({ written: 0, queued: 0, dropped: 2, failures: 1 });
    await sink.close(1000);
    hook.stop();
  });

  test("an endpoint that never answers times out; closing counts what was left", async () => {
    const hook = receiver(0, () => "hang");
    const sink = new WebhookSink({ url: `http://127.0.0.1:${hook.port}/`, timeoutMs: 100, backoff: fast });
    sink.write([rec(1), rec(2)]);
    await waitFor("a timeout", () => /no answer within 100 ms/.test(sink.stats().lastError ?? ""));
    // Closing gives up on the hanging request when its 200 ms have passed, not at the request's own timeout.
    const closing = await withTestClock(async (advance) => {
      const c = track(sink.close(200));
      await advance(199);
      expect(c.settled, "close(200) returned with the records still undelivered").toBe(false);
      await advance(1);
      return c;
    });
    await waitWithoutTimers("close(200) to return once its time had passed", () => closing.settled);
    expect(sink.stats()).toMatchObject({ written: 0, queued: 0, dropped: 2 });
    sink.write([rec(3)]);
    expect(sink.stats().dropped).toBe(3);
    hook.stop();
  });

  test("Retry-After", () => {
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs("soon")).toBeNull();
    expect(retryAfterMs(null)).toBeNull();
  });
});
