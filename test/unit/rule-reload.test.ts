import { afterAll, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { RuleSet } from "../../src/rules/rule-set.ts";
import type { RuleReport } from "../../src/model/rule-action.ts";
import { RuleFileWatcher } from "../../src/rules/rule-watcher.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import { waitFor } from "./helpers/waits.ts";
import { endpoint } from "../support/endpoints.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-reload-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const rule = (tag: string) => `import { defineRule } from "sockwarden";
export default defineRule({ name: "tagger", handle(event, act) { act.log("${tag}"); } });
`;

const ep = endpoint({ localPort: 1, remotePort: 2, packetsSent: 0, packetsReceived: 0, rttMs: null, process: null, pids: [] });
const event = (seq: number): EndpointEvent => ({ type: "opened", seq, time: 1000 + seq, endpoint: ep });
/** The reports so far, for a wait's message. */
const told = (reports: readonly RuleReport[]) => `reports so far: ${JSON.stringify(reports.map((r) => `${r.kind}: ${r.message}`))}`;

describe("rule reload", () => {
  test("editing a file reloads it; a broken edit keeps the old version running and says why", async () => {
    const file = path.join(dir, "tagger.ts");
    fs.writeFileSync(file, rule("v1"));
    const reports: RuleReport[] = [];
    const rules = new RuleSet({ onReport: (r) => reports.push(r) });
    await rules.add({ kind: "file", path: file, label: file });
    const watcher = new RuleFileWatcher([file], [], (label, present) => void (present && rules.reload(label)), undefined, 50);
    try {
      expect((await rules.dispatch([event(1)])).map((a) => a.reason)).toEqual(["v1"]);

      // Replaced the way editors do it: write elsewhere, rename over.
      fs.writeFileSync(`${file}.tmp`, rule("v2"));
      fs.renameSync(`${file}.tmp`, file);
      await waitFor("a reload after the file was replaced", () => reports.some((r) => r.kind === "reloaded"), 20_000, () => told(reports));
      expect((await rules.dispatch([event(2)])).map((a) => a.reason)).toEqual(["v2"]);

      fs.writeFileSync(file, `import { defineRule } from "sockwarden";\nexport default defineRule({ name: "tagger", handle( {\n`);
      await waitFor("a failed reload after the broken edit", () => reports.some((r) => r.kind === "reload-failed"), 20_000, () => told(reports));
      const failed = reports.find((r) => r.kind === "reload-failed")!;
      expect(failed.message).toMatch(/previous one keeps running/);
      expect(failed.line).toBe(2);
      expect((await rules.dispatch([event(3)])).map((a) => a.reason)).toEqual(["v2"]);
    } finally {
      watcher.close();
      rules.dispose();
    }
  });

  test("a rule directory tells of files that appear and go, not of other files or of its own rules' edits twice", async () => {
    const rulesDir = fs.mkdtempSync(path.join(dir, "rules-"));
    const loaded = path.join(rulesDir, "a.ts");
    fs.writeFileSync(loaded, rule("a"));
    const seen: string[] = [];
    const watcher = new RuleFileWatcher([loaded], [rulesDir], (label, present) => seen.push(`${present ? "+" : "-"}${path.basename(label)}`), () => [loaded], 50);
    try {
      fs.writeFileSync(path.join(rulesDir, "notes.txt"), "not a rule");
      fs.writeFileSync(path.join(rulesDir, "types.d.ts"), "declare const x: number;");
      fs.writeFileSync(path.join(rulesDir, "b.ts"), rule("b"));
      await waitFor("the new file to be told", () => seen.includes("+b.ts"), 20_000, () => seen.join(" "));
      fs.rmSync(loaded);
      await waitFor("the removed file to be told", () => seen.includes("-a.ts"), 20_000, () => seen.join(" "));
      expect(seen.filter((s) => !["+b.ts", "-a.ts"].includes(s))).toEqual([]);
    } finally {
      watcher.close();
    }
  });
});
