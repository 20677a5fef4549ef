/**
 * One line per event for people, coloured as TCPView colours rows: green for opened, red for
 * closed, yellow for a state change. Colour only on a terminal and never when NO_COLOR is set.
 * The line is escaped (escapeControl) before it is coloured: process and host names in it are
 * other people's text.
 */
import type { EndpointEvent } from "../monitor/events.ts";
import type { EndpointNames } from "./endpoint-names.ts";
import { humanCount } from "./endpoint-table.ts";
import { ANSI } from "../format/colour.ts";
import { escapeControl } from "../text/escape-control.ts";

const MARK = { opened: "+", closed: "-", "state-changed": "~", counters: "=" } as const;
const COLOUR = { opened: ANSI.green, closed: ANSI.red, "state-changed": ANSI.yellow, counters: ANSI.dim } as const;

export function eventLine(e: EndpointEvent, names: EndpointNames, colour: boolean): string {
  const ep = e.endpoint;
  const t = new Date(e.time);
  const clock = `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${String(t.getMilliseconds()).padStart(3, "0")}`;
  const proto = ep.protocol + (ep.family === 6 ? "6" : "");
  const local = names.endpoint(ep.localAddress, ep.localPort, ep.protocol, ep.family, false);
  const remote = names.endpoint(ep.remoteAddress, ep.remotePort, ep.protocol, ep.family, true);
  let state = ep.state ?? (ep.remotePort !== 0 ? "CONNECTED" : "");
  if (e.type === "state-changed") state = `${e.previousState ?? "-"} -> ${ep.state ?? "-"}`;
  const owner = ep.process ? `${ep.process.pid}/${ep.process.name}` : "-";
  let extra = "";
  if (e.counters) {
    extra = ` sent ${humanCount(e.counters.bytesSent)}B recv ${humanCount(e.counters.bytesReceived)}B (${humanCount(e.counters.bytesSentPerSecond)}B/s out, ${humanCount(e.counters.bytesReceivedPerSecond)}B/s in)`;
  } else if (e.type === "closed" && ep.bytesSent !== null) {
    extra = ` sent ${humanCount(ep.bytesSent)}B recv ${humanCount(ep.bytesReceived)}B`;
  }
  if (e.shortLived) extra += " (short-lived)";
  const text = escapeControl(`${clock} ${MARK[e.type]} ${proto.padEnd(4)} ${local} -> ${remote} ${state} ${owner}${extra}`);
  return colour ? `${COLOUR[e.type]}${text}${ANSI.reset}\n` : `${text}\n`;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
