/**
 * The daemon's configuration file (TOML). Every key is checked; an error names the file, the line
 * and the key, so a typo on a server is found without guessing. examples/sockwarden.toml is the
 * commented reference.
 */
import fs from "node:fs";
import { SockwardenError } from "../errors.ts";
import { DEFAULT_SENSOR, SENSOR_CHOICES, isSensorChoice, type SensorChoice } from "../monitor/sensor-choice.ts";
import { DEFAULT_RESYNC_MS, MAX_INTERVAL_MS, MAX_RESYNC_MS, MIN_INTERVAL_MS, MIN_RESYNC_MS } from "../monitor/monitor-loop.ts";
import { formatTomlPath, locateToml, type TomlLocations, type TomlPath } from "./toml-locate.ts";
import { RULE_ISOLATIONS, type RuleIsolation } from "../rules/runner/rule-pool.ts";
import { METRICS_ADDRESS_HINT, parseMetricsAddress } from "./metrics-server.ts";

export class ConfigError extends SockwardenError {
  override readonly exitCode = 2;
}

export interface DaemonConfig {
  /** Seconds between refreshes. */
  interval: number;
  dryRun: boolean;
  auditLog: string | null;
  /** Where network sinks keep their queues across restarts; null: the default for the user. */
  stateDir: string | null;
  rules: { sources: string[]; options: Record<string, Record<string, unknown>> };
  sinks: string[];
  protect: { ports: number[]; addresses: string[]; processes: string[]; paths: string[] };
  limits: { actionsPerMinute: number; perRule: Record<string, number> };
  /** `isolation`: rules in one runner process ("shared") or one each ("per-rule"); see RulePool. */
  sandbox: { memoryMb: number; wasmMemoryMb: number; timeBudgetMs: number; maxFailures: number; isolation?: RuleIsolation };
  kill: { graceMs: number };
  metrics: string | null;
  /** Watch every network namespace, not only the daemon's own. */
  allNamespaces: boolean;
  /** Where changes come from: snapshots only, or also the kernel's sensor (see SensorChoice). */
  sensor: SensorChoice;
  /** With the sensor running, seconds between full snapshots (see MonitorLoop's resyncMs). */
  resync: number;
  /** The resync period was asked for (here or on the command line): kept exactly, never lengthened. */
  resyncAsked: boolean;
  /** The file it was read from, for messages about keys checked later (rules' options). */
  origin?: { file: string; locations: TomlLocations };
}

export function defaultConfig(): DaemonConfig {
  return {
    interval: 1,
    dryRun: false,
    auditLog: null,
    stateDir: null,
    rules: { sources: [], options: {} },
    sinks: [],
    protect: { ports: [], addresses: [], processes: [], paths: [] },
    limits: { actionsPerMinute: 60, perRule: {} },
    sandbox: { memoryMb: 16, wasmMemoryMb: 48, timeBudgetMs: 50, maxFailures: 5 },
    kill: { graceMs: 3000 },
    metrics: null,
    allNamespaces: false,
    sensor: DEFAULT_SENSOR,
    resync: DEFAULT_RESYNC_MS / 1000,
    resyncAsked: false,
  };
}

type Table = Record<string, unknown>;

/** Reads and checks a configuration file. */
export function loadConfig(file: string): DaemonConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): DaemonConfig {
  let raw: Table;
  const locations = locateToml(text);
  try {
    raw = Bun.TOML.parse(text) as Table;
  } catch (err) {
    // Bun's error carries no usable line (it is the same whatever the file): the line and what is
    // wrong there come from the scan, and Bun's words only where the scan saw nothing amiss.
    if (locations.error) throw new ConfigError(`${file}:${locations.error.line}: ${locations.error.message}`);
    const message = ((err as { message?: string }).message ?? String(err)).replace(/^TOML Parse error:\s*/, "");
    throw new ConfigError(`${file}: ${message}`);
  }
  const c = defaultConfig();
  c.origin = { file, locations };
  const at = (keyPath: string) => `${file}:${locations.lineOf(keyPath.split(".")) ?? 1}: ${keyPath}`;
  const fail = (keyPath: string, what: string): never => {
    throw new ConfigError(`${at(keyPath)}: ${what}`);
  };
  const known = (table: Table, prefix: string, keys: readonly string[]) => {
    for (const k of Object.keys(table)) {
      if (!keys.includes(k)) fail(prefix ? `${prefix}.${k}` : k, `unknown key (known: ${keys.join(", ")})`);
    }
  };
  const num = (v: unknown, keyPath: string, min: number, max: number): number => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) fail(keyPath, `must be a number from ${min} to ${max}`);
    return v as number;
  };
  const strings = (v: unknown, keyPath: string): string[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) fail(keyPath, "must be a list of strings");
    return v as string[];
  };
  const table = (v: unknown, keyPath: string): Table => {
    if (!v || typeof v !== "object" || Array.isArray(v)) fail(keyPath, "must be a table");
    return v as Table;
  };

  known(raw, "", ["interval", "dry_run", "audit_log", "state_dir", "metrics", "all_namespaces", "sensor", "resync", "rules", "sinks", "protect", "limits", "sandbox", "kill"]);
  if (raw.all_namespaces !== undefined) {
    if (typeof raw.all_namespaces !== "boolean") fail("all_namespaces", "must be true or false");
    c.allNamespaces = raw.all_namespaces as boolean;
  }
  if (raw.sensor !== undefined) {
    if (!isSensorChoice(raw.sensor)) fail("sensor", `must be one of ${SENSOR_CHOICES.map((x) => `"${x}"`).join(", ")}`);
    c.sensor = raw.sensor as SensorChoice;
  }
  if (raw.interval !== undefined) c.interval = num(raw.interval, "interval", MIN_INTERVAL_MS / 1000, MAX_INTERVAL_MS / 1000);
  if (raw.resync !== undefined) {
    c.resync = num(raw.resync, "resync", MIN_RESYNC_MS / 1000, MAX_RESYNC_MS / 1000);
    c.resyncAsked = true;
  }
  if (raw.dry_run !== undefined) {
    if (typeof raw.dry_run !== "boolean") fail("dry_run", "must be true or false");
    c.dryRun = raw.dry_run as boolean;
  }
  if (raw.audit_log !== undefined) {
    if (typeof raw.audit_log !== "string" || !raw.audit_log) fail("audit_log", "must be a file path");
    c.auditLog = raw.audit_log as string;
  }
  if (raw.state_dir !== undefined) {
    if (typeof raw.state_dir !== "string" || !raw.state_dir) fail("state_dir", "must be a directory path");
    c.stateDir = raw.state_dir as string;
  }
  if (raw.metrics !== undefined) {
    if (typeof raw.metrics !== "string") fail("metrics", `must be ${METRICS_ADDRESS_HINT}`);
    const address = parseMetricsAddress(raw.metrics as string);
    if (typeof address === "string") fail("metrics", address);
    c.metrics = raw.metrics as string;
  }
  if (raw.sinks !== undefined) c.sinks = strings(raw.sinks, "sinks");
  if (raw.rules !== undefined) {
    const r = table(raw.rules, "rules");
    known(r, "rules", ["sources", "options"]);
    if (r.sources !== undefined) c.rules.sources = strings(r.sources, "rules.sources");
    if (r.options !== undefined) {
      const o = table(r.options, "rules.options");
      for (const [name, v] of Object.entries(o)) c.rules.options[name] = table(v, `rules.options.${name}`);
    }
  }
  if (raw.protect !== undefined) {
    const p = table(raw.protect, "protect");
    known(p, "protect", ["ports", "addresses", "processes", "paths"]);
    if (p.ports !== undefined) {
      if (!Array.isArray(p.ports)) fail("protect.ports", "must be a list of port numbers");
      c.protect.ports = (p.ports as unknown[]).map((x) => num(x, "protect.ports", 0, 65535));
    }
    if (p.addresses !== undefined) c.protect.addresses = strings(p.addresses, "protect.addresses");
    if (p.processes !== undefined) c.protect.processes = strings(p.processes, "protect.processes");
    if (p.paths !== undefined) c.protect.paths = strings(p.paths, "protect.paths");
  }
  if (raw.limits !== undefined) {
    const l = table(raw.limits, "limits");
    known(l, "limits", ["actions_per_minute", "rules"]);
    if (l.actions_per_minute !== undefined) c.limits.actionsPerMinute = num(l.actions_per_minute, "limits.actions_per_minute", 0, 1e6);
    if (l.rules !== undefined) {
      for (const [name, v] of Object.entries(table(l.rules, "limits.rules"))) {
        const t = table(v, `limits.rules.${name}`);
        known(t, `limits.rules.${name}`, ["actions_per_minute"]);
        c.limits.perRule[name] = num(t.actions_per_minute, `limits.rules.${name}.actions_per_minute`, 0, 1e6);
      }
    }
  }
  if (raw.sandbox !== undefined) {
    const s = table(raw.sandbox, "sandbox");
    known(s, "sandbox", ["memory_mb", "wasm_memory_mb", "time_budget_ms", "max_failures", "isolation"]);
    if (s.isolation !== undefined) {
      if (!RULE_ISOLATIONS.includes(s.isolation as RuleIsolation)) fail("sandbox.isolation", `must be one of ${RULE_ISOLATIONS.map((x) => `"${x}"`).join(", ")}`);
      c.sandbox.isolation = s.isolation as RuleIsolation;
    }
    if (s.memory_mb !== undefined) c.sandbox.memoryMb = num(s.memory_mb, "sandbox.memory_mb", 1, 1024);
    if (s.wasm_memory_mb !== undefined) c.sandbox.wasmMemoryMb = num(s.wasm_memory_mb, "sandbox.wasm_memory_mb", 16, 4096);
    if (s.time_budget_ms !== undefined) c.sandbox.timeBudgetMs = num(s.time_budget_ms, "sandbox.time_budget_ms", 1, 60_000);
    if (s.max_failures !== undefined) c.sandbox.maxFailures = num(s.max_failures, "sandbox.max_failures", 1, 1e6);
  }
  if (raw.kill !== undefined) {
    const k = table(raw.kill, "kill");
    known(k, "kill", ["grace_ms"]);
    if (k.grace_ms !== undefined) c.kill.graceMs = num(k.grace_ms, "kill.grace_ms", 0, 600_000);
  }
  return c;
}

/**
 * The line a dotted key is written on (for messages): the key's own line inside its table, or
 * the table header. 1 when it cannot be found.
 */
export function lineOf(text: string, keyPath: string): number {
  return locateToml(text).lineOf(keyPath.split(".")) ?? 1;
}

/** `file:line: key` for a key of the configuration, or the key alone when it came from no file. */
export function keyAt(config: DaemonConfig, path: TomlPath): string {
  if (!config.origin) return formatTomlPath(path);
  return `${config.origin.file}:${config.origin.locations.lineOf(path) ?? 1}: ${formatTomlPath(path)}`;
}
