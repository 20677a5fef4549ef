/**
 * Reloads rule files when they change. Editors often save by writing a new file and renaming it
 * over the old one, which ends a watch on the file itself, so each rule's directory is watched and
 * changes are matched by name. Bursts of change notices are folded into one reload.
 */
import fs from "node:fs";
import path from "node:path";
import type { RuleSet } from "./rule-set.ts";

export class RuleFileWatcher {
  private readonly watchers: fs.FSWatcher[] = [];
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private closed = false;

  /** `files`: rule labels that are file paths. */
  constructor(
    private readonly rules: RuleSet,
    files: readonly string[],
    private readonly debounceMs = 150,
    private readonly onError: (message: string) => void = () => {},
  ) {
    const byDir = new Map<string, Set<string>>();
    for (const f of files) {
      const dir = path.dirname(path.resolve(f));
      const set = byDir.get(dir) ?? new Set<string>();
      set.add(path.basename(f));
      byDir.set(dir, set);
    }
    const labels = new Map(files.map((f) => [path.resolve(f), f]));
    for (const [dir, names] of byDir) {
      try {
        const w = fs.watch(dir, { persistent: false }, (_event, name) => {
          if (name === null) {
            // Some file systems do not say which file changed: reload every rule in the directory.
            for (const n of names) this.schedule(labels.get(path.join(dir, n))!);
            return;
          }
          const base = String(name);
          if (names.has(base)) this.schedule(labels.get(path.join(dir, base))!);
        });
        w.on("error", (err) => this.onError(`stopped watching ${dir}: ${err.message}`));
        this.watchers.push(w);
      } catch (err) {
        this.onError(`cannot watch ${dir} for rule changes: ${(err as Error).message}`);
      }
    }
  }

  private schedule(label: string): void {
    if (this.closed) return;
    const pending = this.timers.get(label);
    if (pending) clearTimeout(pending);
    this.timers.set(
      label,
      setTimeout(() => {
        this.timers.delete(label);
        // A file that is being replaced may be missing for a moment; the next notice retries.
        if (!fs.existsSync(label)) return;
        void this.rules.reload(label);
      }, this.debounceMs),
    );
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    for (const w of this.watchers) w.close();
  }
}
