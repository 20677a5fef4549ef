// Pieces every suite's report half shares: the heading and table cells of its Markdown.

/** A value for a Markdown table cell: a "|" inside would end the cell. */
export function mdCell(s: string): string {
  return s.replace(/\|/g, "\\|");
}

/** The first lines of a suite's Markdown report. */
export function reportHeading(suite: string, startedAt: string): string[] {
  return [`# sockwarden ${suite} benchmark — ${startedAt}`, ""];
}

/** One target as the text report prints it. */
export function targetText(t: { description: string; status: string; detail: string }): string {
  return `Target: ${t.description}\n  => ${t.status.toUpperCase()}: ${t.detail}`;
}

/** The notes a row of a timing table starts with: why it failed, was skipped or was cut short. */
export function statusNotes(
  row: { status: string; error?: string | null; summary?: { failedRuns: number } | null },
  cutShort: string | null | undefined,
): string[] {
  const notes: string[] = [];
  if (row.status === "failed") notes.push(`FAILED: ${row.error ?? "unknown error"}`);
  if (row.status === "skipped") notes.push(`not measured: ${row.error ?? "not run"}`);
  if (row.summary && row.summary.failedRuns > 0 && row.status === "ok") notes.push(`${row.summary.failedRuns} run(s) failed: ${row.error ?? ""}`);
  if (cutShort && row.status === "ok") notes.push(`cut short: ${cutShort}`);
  return notes;
}

/** The fields every suite's JSON report starts with. */
export interface ReportEnvelope<K extends string> {
  kind: K;
  version: 2;
  startedAt: string;
  finishedAt: string;
  interrupted: boolean;
  netns: string;
  host: Record<string, string | number | null>;
}

export function reportEnvelope<K extends string>(
  kind: K,
  started: Date,
  interrupted: boolean,
  netns: string,
  host: Record<string, string | number | null>,
): ReportEnvelope<K> {
  return { kind, version: 2 as const, startedAt: started.toISOString(), finishedAt: new Date().toISOString(), interrupted, netns, host };
}

/** A Markdown table: the header row, the alignment row (right-aligned columns by index), the rows. */
export function mdTable(headers: readonly string[], right: ReadonlySet<number>, rows: readonly string[][]): string[] {
  return [
    `| ${headers.join(" | ")} |`,
    `|${headers.map((_, i) => (right.has(i) ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.map(mdCell).join(" | ")} |`),
  ];
}
