// Command-line options of bench/soak.ts (npm run soak).
import { COMMON_USAGE, parseSuiteArgs, type CommonOptions, type SuiteDefaults } from "./suite-options.ts";

export interface SoakOptions extends CommonOptions {
  minutes: number;
  warmupMinutes: number;
  rate: number;
  interval: number;
  classRate: number;
  churnClose: "fin" | "rst";
  sampleSeconds: number;
}

export const SOAK_USAGE = `Usage: bun bench/soak.ts [options]      (as root; npm run soak builds first)

\`sockwarden run\` with every bundled plugin in a private network namespace for a
long time at a steady rate of new loopback connections, among them connections
smtp-guard must close (curl and eximx to port 25, over IPv4 and IPv6) and
look-alikes it must leave alone (exim4 and postfix to port 25, curl to port 2525,
UDP to port 25, the server's side of port 25). Reports the daemon's RSS and CPU
over time, missed closes and wrong closes, against the targets: none missed, none
wrong, RSS growth under 10% after warm-up.

Options:
  --minutes M           traffic duration                                   [30]
  --warmup-minutes M    RSS before this is not judged                       [5]
  --rate N              new connections a second, all kinds               [500]
  --interval S          the daemon's refresh interval                       [1]
  --class-rate N        connections a second of each held class             [2]
  --churn-close MODE    fin (TIME_WAIT left behind) or rst                [fin]
  --sample-seconds S    RSS/CPU sampling period                            [10]
${COMMON_USAGE}  (--max-minutes: --minutes + 10; --quick: --minutes 1 --warmup-minutes 0.3
   --rate 50 --churn-close rst)

Exit status: 0 when every target is met, 1 when one is not (or the run failed),
2 for bad options or missing prerequisites, 130 when interrupted.
`;

const SOAK_ARG_CONFIG = {
  minutes: { type: "string" },
  "warmup-minutes": { type: "string" },
  rate: { type: "string" },
  interval: { type: "string" },
  "class-rate": { type: "string" },
  "churn-close": { type: "string" },
  "sample-seconds": { type: "string" },
} as const;

const DEFAULTS: SuiteDefaults = {
  normal: { minutes: "30", rate: "500", interval: "1", "class-rate": "2", "churn-close": "fin", "sample-seconds": "10" },
  quick: { minutes: "1", "warmup-minutes": "0.3", rate: "50", "churn-close": "rst", "sample-seconds": "5" },
  // Traffic, then draining, stopping and reading the records: a generous margin.
  maxMinutes: (a) => a.number("minutes", 0.5, 24 * 60) + 10,
};

export function parseSoakOptions(argv: string[]): SoakOptions {
  const a = parseSuiteArgs(argv, SOAK_ARG_CONFIG, DEFAULTS);
  const minutes = a.number("minutes", 0.5, 24 * 60);
  return {
    ...a.common,
    minutes,
    warmupMinutes: a.number("warmup-minutes", 0, minutes, a.opt("warmup-minutes") ?? String(Math.min(5, minutes / 3))),
    rate: a.number("rate", 20, 20_000),
    interval: a.number("interval", 0.1, 60),
    classRate: a.number("class-rate", 0.1, 50),
    churnClose: a.oneOf("churn-close", ["fin", "rst"] as const),
    sampleSeconds: a.number("sample-seconds", 1, 600),
  };
}
