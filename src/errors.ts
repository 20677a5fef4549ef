/**
 * Named errors, one class per failure the command line must tell apart. Each carries the exit
 * code the CLI uses and a message that is shown as one line, without a stack trace.
 */

export class SockwardenError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The user asked for something malformed: bad flag, address, port or state. Exit 2. */
export class UsageError extends SockwardenError {
  override readonly exitCode = 2;
}

/**
 * A file or directory the user named cannot be read or written; the message names it and says
 * why in words. It is the user's input, so exit 2.
 */
export class FileError extends UsageError {}

/** The thing asked for does not exist (e.g. no process with that PID). Exit 1. */
export class NotFoundError extends SockwardenError {
  override readonly exitCode = 1;
}

/** An operation needs a privilege the process lacks; the message names it. Exit 4. */
export class PrivilegeError extends SockwardenError {
  override readonly exitCode = 4;
}

/** The kernel or OS lacks a feature (no sock_diag, no SOCK_DESTROY). Exit 5. */
export class UnsupportedError extends SockwardenError {
  override readonly exitCode = 5;
}

/** Bytes from the kernel or a recording do not decode: short or malformed message. */
export class DecodeError extends SockwardenError {
  override readonly exitCode = 3;
}

/** An OS call failed with an errno. */
export class SystemCallError extends SockwardenError {
  constructor(
    readonly call: string,
    readonly errno: number,
    readonly code: string,
  ) {
    super(`${call} failed: ${code} (errno ${errno})`);
  }
}

/** A rule that does not compile, load or validate; the message is `file:line:col message`. */
export class RuleError extends SockwardenError {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly column: number | null,
    readonly detail: string,
  ) {
    super(`${file}${line !== null ? `:${line}${column !== null ? `:${column}` : ""}` : ""}: ${detail}`);
  }
}
