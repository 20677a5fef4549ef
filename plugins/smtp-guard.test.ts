/**
 * smtp-guard through the compiled executable: `sockwarden rules test` over smtp.ndjson
 * (make-smtp-events.py: a port-25 listener, a client named python3 and one renamed exim4), and
 * synthetic events for the edges. Needs dist/sockwarden.
 */
import { afterAll, describe, expect, it } from "vitest";
import path from "node:path";
import { EVENTS_DIR, closeLine, options, recorded, rulesTest, syntheticFile } from "../test/fixtures/rules/rules-cli.ts";

const SMTP = path.join(EVENTS_DIR, "smtp.ndjson");
const events = recorded(SMTP);

describe("smtp-guard", () => {
  it("closes python3's connection to port 25 and spares exim4's and the server's side", () => {
    const run = rulesTest(["smtp-guard"], SMTP);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([closeLine("smtp-guard", "python3 is not a mail server", events, 3)]);
  });

  it("spares a process configured as a mail server", () => {
    const run = rulesTest(["smtp-guard"], SMTP, options({ "smtp-guard": { mailServers: ["python3", "exim4"] } }));
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([]);
  });

  it("watches the configured port only", () => {
    const run = rulesTest(["smtp-guard"], SMTP, options({ "smtp-guard": { port: 587 } }));
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([]);
  });

  describe("edges", () => {
    const f = syntheticFile([
      // Seen first while connecting, then established: closed once, when established.
      { type: "opened", at: 0, local: "10.0.0.5:40000", remote: "198.51.100.7:25", state: "SYN_SENT" },
      { type: "state-changed", at: 1, local: "10.0.0.5:40000", remote: "198.51.100.7:25", state: "ESTABLISHED", previousState: "SYN_SENT" },
      // No owner known.
      { type: "opened", at: 2, local: "10.0.0.5:40001", remote: "198.51.100.7:25", process: null },
      // UDP to port 25 is not mail.
      { type: "opened", at: 3, protocol: "udp", local: "10.0.0.5:40002", remote: "198.51.100.7:25" },
      // Postfix's smtp client.
      { type: "opened", at: 4, local: "10.0.0.5:40003", remote: "198.51.100.7:25", process: { pid: 77, name: "smtp" } },
    ]);
    afterAll(() => f.cleanup());

    it("closes when established, an unknown owner too; not UDP, not a mail server", () => {
      const run = rulesTest(["smtp-guard"], f.file);
      expect(run.stderr).toBe("");
      expect(run.lines).toEqual([
        closeLine("smtp-guard", "client is not a mail server", f.events, 2),
        closeLine("smtp-guard", "unknown process is not a mail server", f.events, 3),
      ]);
    });
  });
});
