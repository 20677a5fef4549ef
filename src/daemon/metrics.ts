/**
 * Counters and gauges the daemon exposes in the Prometheus text format (`--metrics HOST:PORT`).
 * What may be counted is named in metric-catalogue.ts.
 */
import type { CounterDef, GaugeDef, MetricDef } from "./metric-catalogue.ts";

type Labels = Record<string, string>;

interface Family {
  help: string;
  type: "counter" | "gauge";
  values: Map<string, { labels: Labels; value: number }>;
}

export class Metrics {
  private readonly families = new Map<string, Family>();

  private family(def: MetricDef): Family {
    let f = this.families.get(def.name);
    if (!f) {
      f = { help: def.help, type: def.type, values: new Map() };
      this.families.set(def.name, f);
    }
    return f;
  }

  inc(def: CounterDef, labels: Labels = {}, by = 1): void {
    const f = this.family(def);
    const key = labelKey(labels);
    const v = f.values.get(key);
    if (v) v.value += by;
    else f.values.set(key, { labels, value: by });
  }

  set(def: GaugeDef, labels: Labels, value: number): void {
    this.family(def).values.set(labelKey(labels), { labels, value });
  }

  /** A counter whose running total is kept elsewhere (e.g. a sink's own statistics). */
  setCounter(def: CounterDef, labels: Labels, value: number): void {
    this.family(def).values.set(labelKey(labels), { labels, value });
  }

  /** Replaces a gauge family's whole set of values (e.g. endpoints by state). */
  replace(def: GaugeDef, entries: { labels: Labels; value: number }[]): void {
    const f = this.family(def);
    f.values.clear();
    for (const e of entries) f.values.set(labelKey(e.labels), e);
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of [...this.families].sort(([a], [b]) => (a < b ? -1 : 1))) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const { labels, value } of f.values.values()) {
        const l = Object.entries(labels);
        out.push(`${name}${l.length ? `{${l.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}` : ""} ${Number.isFinite(value) ? value : 0}`);
      }
    }
    return out.join("\n") + "\n";
  }
}

function labelKey(labels: Labels): string {
  return Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

function escape(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
