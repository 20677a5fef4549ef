/**
 * What `run` checks before it starts (and before a reload takes effect): the audit log and every
 * file sink can be written. An action that cannot be audited must not be taken, and an alert
 * with nowhere to go is lost, so a path that can never be written stops the start with one line.
 *
 * Exit status as errors.ts maps them: a file the user named (a path under /proc, a directory,
 * no permission) is the user's input, exit 2, as `close --audit-log`; the default audit log that
 * the user may not write needs a privilege they lack, exit 4.
 */
import { defaultAuditPath } from "../actions/audit-log.ts";
import type { Platform } from "../engine/index.ts";
import { parseSinkSpec } from "../outputs/index.ts";
import { FileError, PrivilegeError } from "../errors.ts";
import type { DaemonConfig } from "../daemon/config.ts";
import { checkWritableFile, fileProblem } from "./user-files.ts";

/** Where the audit log's path came from, for the message. */
export type AuditOrigin = "--audit-log" | "audit_log" | null;

/** Mode of directories made on the way, as the audit log and the file sink make them. */
const DIRECTORY_MODE = 0o750;

export function checkDaemonFiles(config: DaemonConfig, auditOrigin: AuditOrigin, platform: Platform): void {
  // Malformed sinks are told as they would be at start, before any file is looked at.
  const specs = config.sinks.map((s) => parseSinkSpec(s));
  const named = auditOrigin !== null || !!process.env.SOCKWARDEN_AUDIT_LOG;
  const audit = config.auditLog ?? defaultAuditPath(platform.places);
  try {
    checkWritableFile(audit, auditOrigin ?? (named ? "SOCKWARDEN_AUDIT_LOG" : "the audit log"), DIRECTORY_MODE);
  } catch (err) {
    if (!named && err instanceof FileError && err.message.includes(fileProblem({ code: "EACCES" }))) {
      throw new PrivilegeError(`${err.message} (the default for this user; name another with --audit-log)`);
    }
    throw err;
  }
  for (const [i, spec] of specs.entries()) {
    if (spec.type === "file") checkWritableFile(spec.path, `sink ${config.sinks[i]!.trim()}`, DIRECTORY_MODE);
  }
}
