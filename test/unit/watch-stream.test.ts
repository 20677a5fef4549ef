import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import { WatchStream } from "../../src/cli/watch-stream.ts";

const ep = (localPort: number) => ({ localPort }) as Endpoint;
// The monitor's numbers, as it made them: most are for ports the filter drops.
const events = (from: number, ports: number[]): EndpointEvent[] => ports.map((p, i) => ({ type: "opened", seq: from + i, time: 0, endpoint: ep(p) }));

describe("WatchStream", () => {
  test("numbers what it lets through from 1, without gaps, across batches", () => {
    const s = new WatchStream((e) => e.endpoint.localPort === 8443);
    expect(s.take(events(1, [22, 8443, 80, 8443])).map((e) => e.seq)).toEqual([1, 2]);
    expect(s.take(events(133, [25, 25, 8443])).map((e) => [e.seq, e.endpoint.localPort])).toEqual([[3, 8443]]);
  });

  test("stops at the limit and says it is done", () => {
    const s = new WatchStream(() => true, 3);
    expect(s.take(events(1, [1, 2])).map((e) => e.seq)).toEqual([1, 2]);
    expect(s.done).toBe(false);
    expect(s.take(events(3, [3, 4, 5])).map((e) => e.endpoint.localPort)).toEqual([3]);
    expect(s.done).toBe(true);
    expect(s.take(events(6, [6]))).toEqual([]);
  });
});
