// Where a sockwarden process spent its CPU, from the profiles it wrote when started with
// BUN_OPTIONS="--cpu-prof --cpu-prof-dir=DIR" (the daemon and each rule runner write one at exit).
//
//   bun bench/profile-summary.ts [--top N] FILE.cpuprofile|DIR ...
//
// Prints, per profile, the functions with the most self time and the most total time (with what
// they called). A profiled run is slower than a measured one: read the shares, not the times.
import { statSync } from "node:fs";
import { profilesIn, profileText, summarizeProfile } from "./lib/cpu-profile.ts";

function main(): number {
  const args = process.argv.slice(2);
  let top = 15;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--top") {
      top = Number(args[++i]);
      if (!Number.isInteger(top) || top < 1) {
        process.stderr.write("--top must be a whole number from 1\n");
        return 2;
      }
    } else if (a === "-h" || a === "--help") {
      process.stdout.write("Usage: bun bench/profile-summary.ts [--top N] FILE.cpuprofile|DIR ...\n");
      return 0;
    } else {
      let dir = false;
      try {
        dir = statSync(a).isDirectory();
      } catch {
        process.stderr.write(`no such file or directory: ${a}\n`);
        return 2;
      }
      files.push(...(dir ? profilesIn(a) : [a]));
    }
  }
  if (files.length === 0) {
    process.stderr.write("no .cpuprofile files given (Usage: bun bench/profile-summary.ts [--top N] FILE|DIR ...)\n");
    return 2;
  }
  for (const f of files) {
    try {
      process.stdout.write(profileText(summarizeProfile(f, top)) + "\n\n");
    } catch (e) {
      process.stderr.write(`${f}: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
  }
  return 0;
}

process.exitCode = main();
