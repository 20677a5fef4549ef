/**
 * How addresses and ports are written for people: numeric, or with service names and resolved
 * host names. JSON output never goes through this: scripts get numbers.
 */
import type { Family, Protocol } from "../model/endpoint.ts";
import { serviceName } from "../net/services.ts";

export interface EndpointNames {
  endpoint(address: string, port: number, protocol: Protocol, family: Family, remote: boolean): string;
}

export function numericNames(): EndpointNames {
  return { endpoint: (a, p, _proto, fam, remote) => joinHostPort(a, fam, remote && p === 0 ? "*" : String(p)) };
}

/** Names from the embedded services table and from a map of resolved host names. */
export function friendlyNames(hosts: ReadonlyMap<string, string>): EndpointNames {
  return {
    endpoint(address, port, protocol, family, remote) {
      const host = hosts.get(address);
      const portText = remote && port === 0 ? "*" : (serviceName(port, protocol) ?? String(port));
      return host ? `${host}:${portText}` : joinHostPort(address, family, portText);
    },
  };
}

export function joinHostPort(address: string, family: Family, port: string): string {
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}
