/**
 * The audit log: one JSON line per action taken (or, in a dry run, that would have been taken),
 * appended with O_APPEND so that several writers never interleave within a line. An action whose
 * record cannot be written is not lost: the record goes to stderr with the reason.
 */
import fs from "node:fs";
import path from "node:path";
import type { Endpoint } from "../model/endpoint.ts";
import type { ProcessInfo } from "../model/process.ts";
import { endpointToJson, type EndpointJson } from "../format/endpoint-json.ts";
import type { Platform, PlatformPlaces } from "../engine/index.ts";
import { currentActor, type Actor } from "./actor.ts";

export interface AuditRecord {
  time: string;
  /** close | kill | would-close | would-kill | alert ... */
  action: string;
  endpoint: EndpointJson | null;
  /** The process the action was decided about (for a kill, as it was when chosen). */
  process: ProcessInfo | null;
  /**
   * Kills: what the PID named when it was looked at right before signalling (start time as
   * observed then): the process signalled, or the one the kill was refused for.
   */
  observed?: ProcessInfo | null;
  /** Kills: the signals that went out, in order; empty when none did. */
  signals?: string[];
  reason: string;
  /** "cli", "live-view", or the rule's name. */
  requestedBy: string;
  /** Who ran sockwarden: real and effective uid, login user, SUDO_USER. */
  actor: Actor;
  /**
   * closed | gone | failed | dry-run | protected | rate-limited, and for kills terminated |
   * killed | signalled | reused | changed (see EndOutcome).
   */
  outcome: string;
  message: string;
}

export interface AuditInput {
  action: string;
  endpoint?: Endpoint | null;
  process?: ProcessInfo | null;
  observed?: ProcessInfo | null;
  signals?: readonly string[];
  reason: string;
  requestedBy: string;
  outcome: string;
  message: string;
}

/** Where the log goes unless configured: SOCKWARDEN_AUDIT_LOG, else the platform's place. */
export function defaultAuditPath(places: Pick<PlatformPlaces, "auditLog">): string {
  return process.env.SOCKWARDEN_AUDIT_LOG || places.auditLog();
}

/** Who acts on this platform, the session's login user included. */
export function actorOn(platform: Pick<Platform, "loginUser">): () => Actor {
  return () => currentActor({ login: () => platform.loginUser() });
}

export class AuditLog {
  /** Records that could not be written to the file (they went to stderr instead). */
  failures = 0;
  private actor: Actor | null = null;

  constructor(
    readonly file: string,
    private readonly fallback: (line: string) => void = (line) => process.stderr.write(line),
    /** Who acts; looked up at the first record (a process's identity does not change under it). */
    private readonly whoActs: () => Actor = () => currentActor(),
  ) {}

  append(input: AuditInput): AuditRecord {
    const record: AuditRecord = {
      time: new Date().toISOString(),
      action: input.action,
      endpoint: input.endpoint ? endpointToJson(input.endpoint) : null,
      process: input.process ?? input.endpoint?.process ?? null,
      ...(input.observed !== undefined ? { observed: input.observed } : {}),
      ...(input.signals !== undefined ? { signals: [...input.signals] } : {}),
      reason: input.reason,
      requestedBy: input.requestedBy,
      actor: (this.actor ??= this.whoActs()),
      outcome: input.outcome,
      message: input.message,
    };
    const line = JSON.stringify(record) + "\n";
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o750 });
      fs.appendFileSync(this.file, line, { mode: 0o640 });
    } catch (err) {
      this.failures++;
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      this.fallback(`sockwarden: cannot write the audit log ${this.file} (${code}); the record follows: ${line}`);
    }
    return record;
  }
}
