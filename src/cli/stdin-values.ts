/**
 * `-` for standard input as an option's value. yargs takes a lone `-` after an option for no
 * value at all (the option gets "", and the `-` is lost on the way to positionals), while
 * `--option=-` comes through as is; so before parsing, the options that read standard input have
 * a following `-` joined to them.
 */

/** Options whose value may be `-` for standard input. */
const READS_STDIN = new Set(["--events"]);

export function joinStdinValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (READS_STDIN.has(word) && argv[i + 1] === "-") {
      out.push(`${word}=-`);
      i++;
      continue;
    }
    out.push(word);
  }
  return out;
}
