/**
 * Words after `--` on a command taking a `[process]` positional. yargs fills the positional from
 * them for the default command only (`sockwarden -- -x`) and leaves them unread after a command
 * word (`sockwarden list -- -x`), so a process filter could be dropped without a word. Here they
 * fill the positional as any word there would, and what is left over is refused.
 */
import { UsageError } from "../errors.ts";

/** The commands whose first word may stand before the positional. */
const COMMAND_WORDS = new Set(["list", "live", "watch"]);

export function takeProcessAfterDashes(argv: { _: (string | number)[]; process?: string | number }): void {
  const words = argv._;
  const start = typeof words[0] === "string" && COMMAND_WORDS.has(words[0]) ? 1 : 0;
  const rest = words.slice(start).map(String);
  if (rest.length === 0) return;
  const extra = argv.process !== undefined ? rest : rest.slice(1);
  if (extra.length > 0) throw new UsageError(`unknown argument: ${extra.join(" ")}`);
  // yargs read the word as a number where it looks like one; a negative number is no PID.
  if (/^-\d+$/.test(rest[0]!)) throw new UsageError(`bad PID '${rest[0]}'`);
  argv.process = rest[0]!;
  argv._ = words.slice(0, start);
}
