import { describe, expect, it } from "vitest";
import { accountCloses, type AuditLine, type HeldConnection } from "../support/soak/soak-analyse.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const held = (over: Partial<HeldConnection>): HeldConnection => ({
  cls: "must-close", kind: "curl-25", name: "curl", proto: "tcp", family: 4,
  laddr: "127.0.0.10", lport: 40000, raddr: "127.0.0.1", rport: 25,
  t0: T0, t1: T0 + 5, result: "aborted", ms: 5, ...over,
});
const closeLine = (c: HeldConnection): AuditLine => ({
  time: new Date(c.t0 + 2).toISOString(), action: "close", outcome: "closed", requestedBy: "smtp-guard",
  endpoint: { protocol: c.proto, localAddress: c.laddr, localPort: c.lport!, remoteAddress: c.raddr, remotePort: c.rport },
  process: { name: c.name }, message: `closed tcp ${c.laddr}:${c.lport}`,
});

describe("accountCloses: connections closed while connect() waited", () => {
  it("counts a must-close connection whose connect() failed with ECONNABORTED or ECONNRESET as closed, its audit line matched", () => {
    const conns = [held({ result: "connect-failed ECONNABORTED" }), held({ lport: 40001, result: "connect-failed ECONNRESET" })];
    const c = accountCloses(conns, conns.map(closeLine));
    expect(c).toMatchObject({ mustClose: 2, closed: 2, closedAtConnect: 2, missed: 0, wrong: 0, unaudited: 0, connectFailed: 0 });
  });

  it("still fails a look-alike that could not connect, and a must-close one refused", () => {
    const lookAlike = held({ cls: "keep", kind: "exim4-25", name: "exim4", result: "connect-failed ECONNABORTED" });
    const refused = held({ lport: 40002, result: "connect-failed ECONNREFUSED" });
    const c = accountCloses([lookAlike, refused], [closeLine(lookAlike)]);
    expect(c).toMatchObject({ closed: 0, closedAtConnect: 0, connectFailed: 2, wrongAudited: 1, wrong: 1 });
  });
});
