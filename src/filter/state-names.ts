/**
 * Parses user-typed TCP state names. Accepts the kernel names (FIN_WAIT1), the spellings of ss
 * (fin-wait-1, estab) and netstat, in any case, plus the groups ss offers.
 */
import { TCP_STATES, type TcpState } from "../model/endpoint.ts";
import { UsageError } from "../errors.ts";

const squash = (s: string) => s.toUpperCase().replace(/[-_ ]/g, "");

const BY_SQUASHED = new Map<string, TcpState[]>(TCP_STATES.map((s) => [squash(s), [s]]));
const ALIASES: Record<string, TcpState[]> = {
  ESTAB: ["ESTABLISHED"],
  SYNRECEIVED: ["SYN_RECV"],
  CLOSED: ["CLOSE"],
  LISTENING: ["LISTEN"],
  // Groups, as ss names them.
  CONNECTED: TCP_STATES.filter((s) => s !== "LISTEN" && s !== "CLOSE"),
  SYNCHRONIZED: TCP_STATES.filter((s) => s !== "LISTEN" && s !== "CLOSE" && s !== "SYN_SENT"),
  BUCKET: ["SYN_RECV", "TIME_WAIT"],
  BIGGER: TCP_STATES.filter((s) => s !== "SYN_RECV" && s !== "TIME_WAIT"),
};
for (const [k, v] of Object.entries(ALIASES)) BY_SQUASHED.set(k, v);

/** Parses a comma-separated list of states or groups; unknown names are a UsageError. */
export function parseStates(values: readonly string[]): Set<TcpState> {
  const out = new Set<TcpState>();
  for (const value of values) {
    for (const part of value.split(",")) {
      const name = part.trim();
      if (!name) continue;
      const states = BY_SQUASHED.get(squash(name));
      if (!states) {
        throw new UsageError(
          `unknown state '${name}': use one of ${TCP_STATES.map((s) => s.toLowerCase()).join(", ")}, or connected, synchronized`,
        );
      }
      for (const s of states) out.add(s);
    }
  }
  return out;
}
