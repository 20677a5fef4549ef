// Command-line options of bench/soak.ts (npm run soak).
import { parseArgs } from "node:util";
import path from "node:path";
import { BENCH_DIR, REPO_ROOT } from "./options.ts";

export interface SoakOptions {
  minutes: number;
  warmupMinutes: number;
  rate: number;
  interval: number;
  classRate: number;
  churnClose: "fin" | "rst";
  sampleSeconds: number;
  exe: string;
  outDir: string;
  save: boolean;
  /** Set by the outer process: absolute end of the whole run (epoch ms). */
  deadline: number;
  inner: boolean;
  help: boolean;
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
  --sockwarden PATH     executable                           [dist/sockwarden]
  --out DIR             where soak-<date>.md/.json go          [bench/results]
  --no-save             print only
  -h, --help            this text

Exit status: 0 when every target is met, 1 when one is not (or the run failed),
2 for bad options or missing prerequisites, 130 when interrupted.
`;

function num(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}, not '${v}'`);
  return n;
}

export function parseSoakOptions(args: string[]): SoakOptions {
  const { values } = parseArgs({
    args,
    options: {
      minutes: { type: "string" },
      "warmup-minutes": { type: "string" },
      rate: { type: "string" },
      interval: { type: "string" },
      "class-rate": { type: "string" },
      "churn-close": { type: "string" },
      "sample-seconds": { type: "string" },
      sockwarden: { type: "string" },
      out: { type: "string" },
      "no-save": { type: "boolean" },
      deadline: { type: "string" },
      inner: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  const minutes = num("minutes", values.minutes, 30, 0.5, 24 * 60);
  const warmupMinutes = num("warmup-minutes", values["warmup-minutes"], Math.min(5, minutes / 3), 0, minutes);
  const churnClose = values["churn-close"] ?? "fin";
  if (churnClose !== "fin" && churnClose !== "rst") throw new Error(`--churn-close must be fin or rst, not '${churnClose}'`);
  return {
    minutes,
    warmupMinutes,
    rate: num("rate", values.rate, 500, 20, 20_000),
    interval: num("interval", values.interval, 1, 0.1, 60),
    classRate: num("class-rate", values["class-rate"], 2, 0.1, 50),
    churnClose,
    sampleSeconds: num("sample-seconds", values["sample-seconds"], 10, 1, 600),
    exe: path.resolve(values.sockwarden ?? path.join(REPO_ROOT, "dist", "sockwarden")),
    outDir: path.resolve(values.out ?? path.join(BENCH_DIR, "results")),
    save: !values["no-save"],
    // Traffic, then draining, stopping and reading the records: a generous margin.
    deadline: values.deadline ? Number(values.deadline) : Date.now() + (minutes + 10) * 60_000,
    inner: !!values.inner,
    help: !!values.help,
  };
}
