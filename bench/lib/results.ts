// The report half's last step: each suite keeps one result, latest-<suite>.md and .json in its
// output directory. The dated files earlier versions wrote there (<suite>-<date>.md/.json) are
// removed on write, so results never pile up in the tree; a run worth keeping is copied by hand.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const DATED = (suite: string): RegExp => new RegExp(`^${suite}-\\d{4}-\\d{2}-\\d{2}-\\d{6}\\.(md|json)$`);

/** The two files of a suite's latest result. */
export function latestPaths(outDir: string, suite: string): { md: string; json: string } {
  return { md: path.join(outDir, `latest-${suite}.md`), json: path.join(outDir, `latest-${suite}.json`) };
}

/**
 * Writes latest-<suite>.md and .json (each through a temporary file, so a reader never sees half
 * of one) and deletes the suite's dated files; false, with the reason logged, when it cannot.
 */
export function saveLatest(outDir: string, suite: string, markdown: string, report: unknown, log: (msg: string) => void): boolean {
  try {
    mkdirSync(outDir, { recursive: true });
    const to = latestPaths(outDir, suite);
    const body = { [to.md]: markdown.endsWith("\n") ? markdown : markdown + "\n", [to.json]: JSON.stringify(report, null, 2) + "\n" };
    for (const [file, text] of Object.entries(body)) {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    }
    for (const name of readdirSync(outDir)) if (DATED(suite).test(name)) rmSync(path.join(outDir, name), { force: true });
    process.stdout.write(`\nSaved ${to.md} and ${to.json}\n`);
    return true;
  } catch (e) {
    log(`could not save results: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
    return false;
  }
}
