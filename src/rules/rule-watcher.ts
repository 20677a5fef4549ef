/**
 * Watches rule files and rule directories. Editors often save by writing a new file and renaming
 * it over the old one, which ends a watch on the file itself, so each rule's directory is watched
 * and changes are matched by name. In a directory named as a rule source, any rule file that
 * appears or goes is told too. Bursts of change notices are folded into one per file.
 */
import fs from "node:fs";
import path from "node:path";

/** What a notice is about, once its burst is over: the file's label and whether it is there now. */
export type RuleFileChange = (label: string, present: boolean) => void;

/** The files a directory source takes, as resolveRuleSources picks them. */
export function isRuleFileName(name: string): boolean {
  return name.endsWith(".ts") && !name.endsWith(".d.ts") && !name.endsWith(".test.ts");
}

interface WatchedDir {
  /** Base names of the rule files named on their own, to their labels. */
  files: Map<string, string>;
  /** The directory as the configuration names it, when it is a rule source itself. */
  source: string | null;
}

export class RuleFileWatcher {
  private readonly watchers: fs.FSWatcher[] = [];
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private closed = false;

  /**
   * `files`: rule labels that are file paths; `dirs`: directories named as rule sources (their
   * files' labels are `path.join(dir, name)`); `known`: the labels loaded now, asked when a file
   * system does not say which file changed.
   */
  constructor(
    files: readonly string[],
    dirs: readonly string[],
    private readonly onChange: RuleFileChange,
    private readonly known: () => readonly string[] = () => files,
    private readonly debounceMs = 150,
    private readonly onError: (message: string) => void = () => {},
  ) {
    const watched = new Map<string, WatchedDir>();
    const entry = (dir: string) => {
      const key = path.resolve(dir);
      let w = watched.get(key);
      if (!w) watched.set(key, (w = { files: new Map(), source: null }));
      return w;
    };
    for (const d of dirs) entry(d).source = d;
    for (const f of files) {
      const w = entry(path.dirname(f));
      // A file of a watched rule directory is told as one of the directory's.
      if (w.source === null) w.files.set(path.basename(f), f);
    }
    for (const [dir, w] of watched) this.watch(dir, w);
  }

  private watch(dir: string, w: WatchedDir): void {
    try {
      const watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (name === null) {
          this.rescan(dir, w);
          return;
        }
        const base = String(name);
        const file = w.files.get(base);
        if (file !== undefined) this.schedule(file);
        else if (w.source !== null && isRuleFileName(base)) this.schedule(path.join(w.source, base));
      });
      watcher.on("error", (err) => this.onError(`stopped watching ${dir}: ${err.message}`));
      this.watchers.push(watcher);
    } catch (err) {
      this.onError(`cannot watch ${dir} for rule changes: ${(err as Error).message}`);
    }
  }

  /** Some file systems do not say which file changed: every rule there is looked at again. */
  private rescan(dir: string, w: WatchedDir): void {
    for (const file of w.files.values()) this.schedule(file);
    if (w.source === null) return;
    for (const label of this.known()) if (path.resolve(path.dirname(label)) === dir) this.schedule(label);
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      this.onError(`cannot read ${dir} for rule changes: ${(err as Error).message}`);
    }
    for (const name of names) if (isRuleFileName(name)) this.schedule(path.join(w.source, name));
  }

  private schedule(label: string): void {
    if (this.closed) return;
    const pending = this.timers.get(label);
    if (pending) clearTimeout(pending);
    this.timers.set(
      label,
      setTimeout(() => {
        this.timers.delete(label);
        if (this.closed) return;
        this.onChange(label, isFile(label));
      }, this.debounceMs),
    );
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    for (const w of this.watchers) w.close();
  }
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
