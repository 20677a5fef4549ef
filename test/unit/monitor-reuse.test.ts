/**
 * A reset frees its port at once and the kernel hands it out again: connections that follow one
 * another on one 4-tuple are each reported, whether or not the sensor's lookup found them (a
 * socket gone before its lookup has no cookie), while late changes of a retired one stay out.
 */
import { describe, expect, test } from "vitest";
import { endpoint as ep } from "../support/endpoints.ts";
import { scripted, summary } from "./helpers/scripted-monitor.ts";

describe("connections on the 4-tuple of one just closed", () => {
  test.each([
    { label: "with cookies", cookies: ["11", "12", "13"] },
    { label: "without cookies", cookies: [null, null, null] },
    { label: "the first with a cookie, the next without", cookies: ["11", null, null] },
  ])("each is opened and closed once ($label)", ({ cookies }) => {
    const s = scripted();
    s.monitor.start();
    const events: string[] = [];
    for (let i = 0; i < 3; i++) {
      s.advance(2);
      s.change(ep({ cookie: cookies[i], state: "ESTABLISHED" }), "SYN_SENT");
      if (i < 2) {
        s.advance(1);
        s.change(ep({ cookie: cookies[i], state: "CLOSE" }), "ESTABLISHED");
      }
      events.push(...summary(s.monitor.takeTransitions()));
    }
    expect(events).toEqual([
      "opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED",
      "opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED",
      "opened 1000 ESTABLISHED",
    ]);
  });

  test("a late change of the retired connection does not open it again", () => {
    const s = scripted();
    s.monitor.start();
    s.advance(5);
    s.change(ep({ cookie: null, state: "ESTABLISHED" }), "SYN_SENT");
    s.change(ep({ cookie: null, state: "CLOSE" }), "ESTABLISHED");
    expect(summary(s.monitor.takeTransitions())).toEqual(["opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED"]);
    // Read late, but made before the close.
    s.change(ep({ cookie: null, state: "FIN_WAIT1" }), "ESTABLISHED", 1004);
    expect(summary(s.monitor.takeTransitions())).toEqual([]);
  });

  test("a closed connection that was handed its successor's cookie does not hide the successor", () => {
    const s = scripted();
    s.monitor.start();
    s.advance(2);
    // Its lookup ran after it was reset and found the next connection on the same addresses.
    s.change(ep({ cookie: "13", state: "ESTABLISHED" }), "SYN_SENT");
    s.advance(1);
    s.change(ep({ cookie: "13", state: "CLOSE" }), "ESTABLISHED");
    s.advance(2);
    s.change(ep({ cookie: "13", state: "ESTABLISHED" }), "SYN_SENT");
    expect(summary(s.monitor.takeTransitions())).toEqual(["opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED", "opened 1000 ESTABLISHED"]);
  });

  test.each([
    { label: "with cookies", cookies: ["11", "12"] },
    { label: "without cookies", cookies: [null, null] },
  ])("the next connection on the 4-tuple whose CLOSE was lost is closed by the resync ($label)", ({ cookies }) => {
    const s = scripted();
    s.monitor.start();
    s.advance(2);
    s.change(ep({ cookie: cookies[0], state: "ESTABLISHED" }), "SYN_SENT");
    s.advance(1);
    s.change(ep({ cookie: cookies[0], state: "CLOSE" }), "ESTABLISHED");
    s.advance(2);
    s.change(ep({ cookie: cookies[1], state: "ESTABLISHED" }), "SYN_SENT");
    const events = summary(s.monitor.takeTransitions());
    expect(events).toEqual(["opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED", "opened 1000 ESTABLISHED"]);
    // Its CLOSE lost: the resync that follows finds it gone and must say so.
    s.lose(1);
    s.advance(10);
    s.table = [];
    expect(s.monitor.takeTransitions()).toEqual([]);
    expect(s.monitor.resyncDue).toBe(true);
    expect(summary(s.monitor.refresh())).toEqual(["closed 1000 ESTABLISHED"]);
    expect(s.monitor.current()).toEqual([]);
  });
});
