/**
 * Files and directories named on the command line. They are the user's input: one that cannot be
 * read or written is a FileError (exit 2) naming the file and the reason in words, found before
 * any work starts, not an errno code surfacing as an internal error halfway through.
 */
import fs from "node:fs";
import path from "node:path";
import { FileError } from "../errors.ts";

const REASONS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory",
  ENOTDIR: "a part of the path is not a directory",
  EEXIST: "it exists and is not a directory",
  EROFS: "the file system is read-only",
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is used up",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the name is too long",
  EBUSY: "it is busy",
  ETXTBSY: "it is a running program",
  EMFILE: "too many open files",
  ENFILE: "too many open files",
  EIO: "input/output error",
  ENXIO: "no such device",
  ENODEV: "no such device",
};

/** What went wrong with a file, in words, from the error an fs call threw. */
export function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code && REASONS[code]) return REASONS[code]!;
  return code ?? (err instanceof Error ? err.message : String(err));
}

/** `cannot read FILE (--option): reason`. */
export function fileError(verb: "read" | "write" | "create", file: string, reason: string, option?: string): FileError {
  return new FileError(`cannot ${verb} ${file}${option ? ` (${option})` : ""}: ${reason}`);
}

/** An empty name would otherwise read as "no such file" about nothing shown. */
function requireName(file: string, option?: string): void {
  if (file === "") throw new FileError(`${option ?? "the file"} needs a file name`);
}

/** Whether `err` is an fs error (it carries an errno code). */
export function isFsError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === "string" && typeof (err as NodeJS.ErrnoException).errno === "number";
}

/**
 * Checks that a file can be read, without opening it: a FIFO (`--replay <(zcat x.gz)`) keeps its
 * data for the reader that comes next.
 */
export function checkReadableFile(file: string, option?: string): void {
  requireName(file, option);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
    if (!stat.isDirectory()) fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    throw fileError("read", file, fileProblem(err), option);
  }
  if (stat.isDirectory()) throw fileError("read", file, REASONS.EISDIR!, option);
}

/** Reads a whole text file the user named. */
export function readUserFile(file: string, option?: string): string {
  requireName(file, option);
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw fileError("read", file, fileProblem(err), option);
  }
}

/**
 * Checks that a file can be written (replaced, appended to or created) without creating it.
 * With `makeDirectories` (their mode), missing directories on its path are made now, as its
 * writer would make them, so that a path that can never be written is told before any work.
 */
export function checkWritableFile(file: string, option?: string, makeDirectories?: number): void {
  requireName(file, option);
  const fail = (reason: string) => fileError("write", file, reason, option);
  let stat: fs.Stats | null = null;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fail(fileProblem(err));
  }
  if (stat) {
    if (stat.isDirectory()) throw fail(REASONS.EISDIR!);
    try {
      fs.accessSync(file, fs.constants.W_OK);
    } catch (err) {
      throw fail(fileProblem(err));
    }
    return;
  }
  const dir = path.dirname(path.resolve(file));
  if (makeDirectories !== undefined) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: makeDirectories });
    } catch (err) {
      throw fail(`cannot make its directory ${(err as NodeJS.ErrnoException).path ?? dir}: ${fileProblem(err)}`);
    }
  }
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch (err) {
    throw fail((err as NodeJS.ErrnoException).code === "ENOENT" ? `the directory ${dir} does not exist` : fileProblem(err));
  }
  if (!dirStat.isDirectory()) throw fail(`${dir} is not a directory`);
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw fail(`${fileProblem(err)} in ${dir}`);
  }
}
