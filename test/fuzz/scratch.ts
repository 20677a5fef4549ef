/**
 * Files for the decoders that read a path (recordings replayed with --replay, fd directories):
 * one directory per process, on a memory file system when there is one, removed at exit. The
 * runner names a parent directory (SOCKWARDEN_FUZZ_SCRATCH) that it removes itself, so nothing is
 * left behind by a child it had to kill.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

let dir: string | null = null;

export function scratchDir(): string {
  if (dir === null) {
    const base = process.env.SOCKWARDEN_FUZZ_SCRATCH ?? (fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir());
    dir = fs.mkdtempSync(path.join(base, "sockwarden-fuzz-"));
    process.once("exit", removeScratch);
  }
  return dir;
}

/** Removes the scratch directory (at exit, or when a test file is done: workers see no exit). */
export function removeScratch(): void {
  if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
}

/** Writes `text` to a file of that name in the scratch directory and returns its path. */
export function scratchFile(name: string, text: string | Uint8Array): string {
  const file = path.join(scratchDir(), name);
  fs.writeFileSync(file, text);
  return file;
}
