/**
 * Port names from the embedded services table (Debian netbase's /etc/services, generated into
 * services-data.ts), so names work the same on every box, with or without /etc/services.
 */

import type { Protocol } from "../model/endpoint.ts";
import { SERVICES_TABLE } from "./services-data.ts";

/** One line of the services table. */
export interface ServiceEntry {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly aliases: readonly string[];
  /** A short human description; empty when none is known. */
  readonly description: string;
}

interface Index {
  byPortProtocol: Map<string, ServiceEntry>;
  byPort: Map<number, ServiceEntry[]>;
  byNameProtocol: Map<string, ServiceEntry>;
}

const NO_ENTRIES: readonly ServiceEntry[] = Object.freeze([]);

let index: Index | null = null;

// Built on first use: most commands (e.g. `list -n`) never look up a name.
function getIndex(): Index {
  if (index !== null) return index;
  const built: Index = { byPortProtocol: new Map(), byPort: new Map(), byNameProtocol: new Map() };
  for (const line of SERVICES_TABLE) {
    const [name = "", portProtocol = "", aliasText = "", description = ""] = line.split("\t");
    const [portText = "", protocol = ""] = portProtocol.split("/");
    const entry: ServiceEntry = Object.freeze({
      name,
      port: Number(portText),
      protocol: protocol as Protocol,
      aliases: Object.freeze(aliasText === "" ? [] : aliasText.split(" ")),
      description,
    });
    // First in file wins for both directions, as getservbyport/getservbyname do.
    const portKey = `${entry.port}/${entry.protocol}`;
    if (!built.byPortProtocol.has(portKey)) built.byPortProtocol.set(portKey, entry);
    const forPort = built.byPort.get(entry.port);
    if (forPort === undefined) built.byPort.set(entry.port, [entry]);
    else forPort.push(entry);
    for (const key of [entry.name, ...entry.aliases]) {
      const nameKey = `${key.toLowerCase()}/${entry.protocol}`;
      if (!built.byNameProtocol.has(nameKey)) built.byNameProtocol.set(nameKey, entry);
    }
  }
  for (const entries of built.byPort.values()) Object.freeze(entries);
  index = built;
  return built;
}

/** The service name for a port, as `ss` shows it without `-n` (`22/tcp` -> `ssh`); null if none. */
export function serviceName(port: number, protocol: Protocol): string | null {
  return getIndex().byPortProtocol.get(`${port}/${protocol}`)?.name ?? null;
}

/**
 * The port of a service name or alias, case-insensitive (`smtp`, `www`, `postgres`). Without a
 * protocol TCP is tried first, then UDP. Null when the table has no such name.
 */
export function servicePort(name: string, protocol?: Protocol): number | null {
  const key = name.toLowerCase();
  const { byNameProtocol } = getIndex();
  if (protocol !== undefined) return byNameProtocol.get(`${key}/${protocol}`)?.port ?? null;
  return (byNameProtocol.get(`${key}/tcp`) ?? byNameProtocol.get(`${key}/udp`))?.port ?? null;
}

/** Every table entry for a port, TCP and UDP, in table order; empty when the port is unnamed. */
export function describePort(port: number): readonly ServiceEntry[] {
  return getIndex().byPort.get(port) ?? NO_ENTRIES;
}
