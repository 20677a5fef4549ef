/**
 * `sockwarden port 25`: what a port is, as Port Explorer's "What is remote port 25?" — the
 * services table's entries for it (TCP and UDP) and the endpoints using it right now, locally or
 * remotely.
 */
import type { Argv } from "yargs";
import { createEngine } from "../engine/index.ts";
import type { Endpoint, Protocol } from "../model/endpoint.ts";
import { parsePort } from "../net/ports.ts";
import { describePort, type ServiceEntry } from "../net/services.ts";
import { compareEndpoints } from "../model/endpoint-order.ts";
import { endpointToJson } from "../format/endpoint-json.ts";
import { renderEndpointTable } from "../view/endpoint-table.ts";
import { numericNames } from "../view/endpoint-names.ts";
import { renderTable } from "../view/text-table.ts";
import { stderr, stdout } from "./output.ts";
import { escapeControl } from "../text/escape-control.ts";

export interface PortArgs {
  port: string;
  tcp?: boolean;
  udp?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function portBuilder<T>(y: Argv<T>) {
  return y
    .positional("port", { type: "string", demandOption: true, describe: "Port number or service name (25, smtp)" })
    .option("tcp", { alias: "t", type: "boolean", describe: "TCP only" })
    .option("udp", { alias: "u", type: "boolean", describe: "UDP only" })
    .option("json", { type: "boolean", describe: "One JSON object: port, services, endpoints" })
    .option("quiet", { alias: "q", type: "boolean", describe: "No notes on stderr" });
}

/** A port is in use by an endpoint bound to it or connected to it. */
export function usesPort(ep: Endpoint, port: number): boolean {
  // Port 0 as a remote port means "not connected", not "connected to port 0".
  return ep.localPort === port || (port !== 0 && ep.remotePort === port);
}

export async function runPort(args: PortArgs): Promise<number> {
  const protocols = new Set<Protocol>();
  if (args.tcp) protocols.add("tcp");
  if (args.udp) protocols.add("udp");
  if (protocols.size === 0) {
    protocols.add("tcp");
    protocols.add("udp");
  }
  const only = protocols.size === 1 ? [...protocols][0] : undefined;
  const port = parsePort(String(args.port), only);
  const services = describePort(port).filter((s) => protocols.has(s.protocol));

  const engine = createEngine();
  let snapshot;
  try {
    snapshot = engine.snapshot({ protocols, families: new Set([4, 6]), withProcesses: true });
  } finally {
    engine.close();
  }
  const endpoints = snapshot.endpoints.filter((ep) => usesPort(ep, port)).sort(compareEndpoints);
  if (!args.quiet) for (const note of snapshot.notes) stderr(`note: ${escapeControl(note)}\n`);

  if (args.json) {
    const doc = { port, services: services.map(serviceToJson), endpoints: endpoints.map(endpointToJson) };
    stdout(JSON.stringify(doc, null, 2) + "\n");
    return 0;
  }
  const what = only ? `port ${port}/${only}` : `port ${port}`;
  let text = `${capitalize(what)}\n\n`;
  if (services.length === 0) text += `The services table has no entry for ${what}.\n`;
  else text += renderServices(services);
  text += "\n";
  if (endpoints.length === 0) text += `No endpoint uses ${what} now.\n`;
  else {
    const width = process.stdout.isTTY ? process.stdout.columns || 80 : undefined;
    text += `Endpoints using ${what} now (${endpoints.length}):\n`;
    text += renderEndpointTable(endpoints, { extended: false, names: numericNames(), width });
  }
  stdout(text);
  return 0;
}

function serviceToJson(s: ServiceEntry) {
  return { name: s.name, protocol: s.protocol, aliases: [...s.aliases], description: s.description };
}

function renderServices(services: readonly ServiceEntry[]): string {
  return renderTable(
    [{ header: "Service" }, { header: "Proto" }, { header: "Aliases" }, { header: "Description" }],
    services.map((s) => [s.name, s.protocol, s.aliases.join(" ") || "-", s.description || "-"]),
  );
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
