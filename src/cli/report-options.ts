/** Options that the commands printing one report (`port`, `proc`) declare alike. */
import type { Argv } from "yargs";

export interface ReportArgs {
  json?: boolean;
  quiet?: boolean;
}

/** `--json` (whose document `json` describes) and `--quiet`. */
export function reportOptions<T>(y: Argv<T>, json: string) {
  return y.option("json", { type: "boolean", describe: json }).option("quiet", { alias: "q", type: "boolean", describe: "No notes on stderr" });
}
