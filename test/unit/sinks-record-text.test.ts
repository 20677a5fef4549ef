/**
 * The stdout sink's lines for people: an action's endpoint and process are said once (its message
 * names them already), and a folded summary of alerts all at one moment reads as one time.
 */
import { describe, expect, test } from "vitest";
import { PassThrough } from "node:stream";
import { StdoutSink } from "../../src/outputs/stdout-sink.ts";
import { AlertFolder } from "../../src/outputs/alert-folder.ts";
import { actionRecord, type SinkRecord } from "../../src/outputs/sink-record.ts";
import { endpointLabel as describeEndpoint } from "../../src/actions/close-endpoint.ts";
import { drain } from "./helpers/waits.ts";
import { endpoint, namedProcess } from "../support/endpoints.ts";

const ep = endpoint({
  localPort: 5000, remoteAddress: "10.0.0.1", remotePort: 25, inode: 7, bytesSent: 1, bytesReceived: 2, packetsSent: 3, packetsReceived: 4,
  cookie: "9", process: namedProcess(4242, "curl", { cmdline: "curl x" }), pids: [4242],
});
const T = new Date("2026-11-21T05:29:23.020Z");

async function lines(records: SinkRecord[]): Promise<string[]> {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d) => (text += d.toString()));
  const sink = new StdoutSink({ format: "human", colour: false, stream });
  sink.write(records);
  await drain(sink);
  return text.split("\n").filter(Boolean);
}

describe("stdout sink lines", () => {
  test("an action names its endpoint once", async () => {
    // As the daemon words a close a rule asked for: the outcome's message, then the reason.
    const message = `closed ${describeEndpoint(ep)}: curl talks SMTP`;
    expect(await lines([actionRecord({ requestedBy: "smtp-guard", action: "close", outcome: "closed", message, endpoint: ep }, T)])).toEqual([
      "2026-11-21T05:29:23.020Z action close closed smtp-guard: closed tcp 127.0.0.1:5000 -> 10.0.0.1:25 (curl, pid 4242): curl talks SMTP",
    ]);
  });

  test("an alert whose message does not name them still gets the endpoint and process", async () => {
    // A refused close is such an alert.
    const alert = actionRecord({ requestedBy: "smtp-guard", action: "close", outcome: "protected", message: "curl talks SMTP", endpoint: ep, refused: true }, T);
    expect(await lines([alert])).toEqual([
      "2026-11-21T05:29:23.020Z alert warning smtp-guard: curl talks SMTP (pid 4242 curl; tcp 127.0.0.1:5000 -> 10.0.0.1:25)",
    ]);
  });

  test("one folded alert reads as one moment, a burst over time as a span", async () => {
    let now = 0;
    const out: SinkRecord[] = [];
    const folder = new AlertFolder({ clock: () => now, timer: false, emit: (r) => out.push(...r) });
    const alert = (iso: string): SinkRecord => ({ time: iso, kind: "alert", rule: "r", severity: "warning", message: "m" });
    folder.write([alert("2026-11-21T05:29:23.010Z"), alert("2026-11-21T05:29:23.020Z")]);
    now = 20_000;
    folder.write([alert("2026-11-21T05:29:43.000Z"), alert("2026-11-21T05:29:44.000Z"), alert("2026-11-21T05:29:45.500Z")]);
    folder.close();
    const summaries = (await lines(out)).map((l) => l.slice(l.indexOf(" ") + 1)).filter((l) => l.includes(" x"));
    expect(summaries).toEqual(["alert warning r: m x1 at 05:29:23.020Z", "alert warning r: m x3 from 05:29:43.000Z to 05:29:45.500Z"]);
  });
});
