/**
 * `sockwarden port 25`: what a port is, as Port Explorer's "What is remote port 25?" — the
 * services table's entries for it (TCP and UDP) and the endpoints using it right now, locally or
 * remotely.
 */
import type { Argv } from "yargs";
import type { Platform } from "../engine/index.ts";
import type { Endpoint, Protocol } from "../model/endpoint.ts";
import { parsePort } from "../net/ports.ts";
import { describePort, type ServiceEntry } from "../net/services.ts";
import { compareEndpoints } from "../model/endpoint-order.ts";
import { endpointToJson } from "../format/endpoint-json.ts";
import { renderEndpointTable } from "../view/endpoint-table.ts";
import { numericNames } from "../view/endpoint-names.ts";
import { renderTable } from "../view/text-table.ts";
import { notes, stdout, tableWidth } from "./output.ts";
import { withEngine } from "./engine-use.ts";
import { reportOptions, type ReportArgs } from "./report-options.ts";

export interface PortArgs extends ReportArgs {
  port: string;
  tcp?: boolean;
  udp?: boolean;
}

export function portBuilder<T>(y: Argv<T>) {
  const port = y
    .positional("port", { type: "string", demandOption: true, describe: "Port number or service name (25, smtp)" })
    .option("tcp", { alias: "t", type: "boolean", describe: "TCP only" })
    .option("udp", { alias: "u", type: "boolean", describe: "UDP only" });
  return reportOptions(port, "One JSON object: port, services, endpoints");
}

/** A port is in use by an endpoint bound to it or connected to it. */
export function usesPort(ep: Endpoint, port: number): boolean {
  // Port 0 as a remote port means "not connected", not "connected to port 0".
  return ep.localPort === port || (port !== 0 && ep.remotePort === port);
}

export async function runPort(args: PortArgs, platform: Platform): Promise<number> {
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

  const snapshot = withEngine(platform, {}, (engine) => engine.snapshot({ protocols, families: new Set([4, 6]), withProcesses: true }));
  const endpoints = snapshot.endpoints.filter((ep) => usesPort(ep, port)).sort(compareEndpoints);
  if (!args.quiet) notes(snapshot.notes);

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
    text += `Endpoints using ${what} now (${endpoints.length}):\n`;
    text += renderEndpointTable(endpoints, { extended: false, names: numericNames(), width: tableWidth() });
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
