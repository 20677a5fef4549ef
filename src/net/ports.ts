/**
 * Port specifications as users type them: `25`, `1000-2000`, `80,443,8000-8080`, `smtp`.
 */

import type { Protocol } from "../model/endpoint.ts";
import { UsageError } from "../errors.ts";
import { servicePort } from "./services.ts";

/** A parsed port specification. */
export interface PortMatcher {
  matches(port: number): boolean;
  /** The specification in canonical form, names shown with their port: `smtp(25),1000-2000`. */
  describe(): string;
}

/** The highest TCP or UDP port. */
export const MAX_PORT = 65535;

const EXAMPLE = "e.g. 25, 1000-2000, 80,443 or smtp";

/**
 * Parses a comma-separated list of ports, `low-high` ranges (inclusive) and service names from
 * the embedded table; `*` matches every port. A name matches its TCP port and its UDP port
 * unless `protocol` restricts it.
 *
 * @throws UsageError naming the bad item for numbers outside 0-65535, reversed ranges, empty
 * items and unknown names.
 */
export function parsePortSpec(text: string, protocol?: Protocol): PortMatcher {
  const trimmed = text.trim();
  if (trimmed === "*") return { matches: () => true, describe: () => "*" };
  if (trimmed === "") throw new UsageError(`empty port specification: expected a port, ${EXAMPLE}`);

  const singles = new Set<number>();
  const ranges: Array<readonly [number, number]> = [];
  const shown: string[] = [];
  for (const rawItem of trimmed.split(",")) {
    const item = rawItem.trim();
    if (item === "") {
      throw new UsageError(`invalid port list "${text}": it has an empty item (${EXAMPLE})`);
    }
    const range = /^([0-9]+)-([0-9]+)$/.exec(item);
    if (range !== null) {
      const low = portNumber(range[1] ?? "", item);
      const high = portNumber(range[2] ?? "", item);
      if (low > high) {
        throw new UsageError(
          `invalid port range "${item}": the first port must not exceed the second`,
        );
      }
      ranges.push([low, high]);
      shown.push(`${low}-${high}`);
      continue;
    }
    if (/^[0-9]+$/.test(item)) {
      const port = portNumber(item, item);
      singles.add(port);
      shown.push(String(port));
      continue;
    }
    const ports = namedPorts(item, protocol);
    if (ports.length === 0) {
      throw new UsageError(
        `unknown port "${item}": expected a port number, range or service name (${EXAMPLE})`,
      );
    }
    for (const port of ports) singles.add(port);
    shown.push(`${item.toLowerCase()}(${ports.join("/")})`);
  }

  const description = shown.join(",");
  return {
    matches(port: number): boolean {
      if (singles.has(port)) return true;
      for (const [low, high] of ranges) if (port >= low && port <= high) return true;
      return false;
    },
    describe: () => description,
  };
}

/**
 * Parses one port: a number from 0 to 65535 or a service name (TCP first, then UDP, unless
 * `protocol` is given).
 *
 * @throws UsageError for anything else.
 */
export function parsePort(text: string, protocol?: Protocol): number {
  const item = text.trim();
  if (/^[0-9]+$/.test(item)) return portNumber(item, item);
  const port = servicePort(item, protocol);
  if (port === null) {
    throw new UsageError(
      `unknown port "${text}": expected a number from 0 to ${MAX_PORT} or a service name, ` +
        "e.g. 25 or smtp",
    );
  }
  return port;
}

function portNumber(digits: string, item: string): number {
  const port = Number(digits);
  if (port > MAX_PORT) {
    throw new UsageError(`invalid port "${item}": ports are numbers from 0 to ${MAX_PORT}`);
  }
  return port;
}

function namedPorts(name: string, protocol: Protocol | undefined): number[] {
  const wanted: Protocol[] = protocol === undefined ? ["tcp", "udp"] : [protocol];
  const ports: number[] = [];
  for (const p of wanted) {
    const port = servicePort(name, p);
    if (port !== null && !ports.includes(port)) ports.push(port);
  }
  return ports;
}
