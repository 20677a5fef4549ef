/**
 * Loads koffi's native addon without koffi's own loader.
 *
 * koffi finds its addon by a computed path that `bun build --compile` cannot see, so the build
 * embeds the target's `koffi.node` as an extra file (Bun.embeddedFiles) and this module loads it.
 * Bun would extract an embedded addon into $TMPDIR, which hardened boxes mount noexec; instead the
 * bytes go into an anonymous memory file (memfd_create) and are loaded from /proc/self/fd/N,
 * which no mount flag affects. When running from source, the addon is taken from node_modules.
 */
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { createHash } from "node:crypto";
import type * as Koffi from "koffi";
import { UnsupportedError } from "../../errors.ts";

export type KoffiModule = typeof Koffi;

const EXPECTED_VERSION = "3.3.4";
let loaded: KoffiModule | null = null;

/** Returns the koffi module, loading its addon on first use. */
export function koffi(): KoffiModule {
  if (loaded) return loaded;
  const native = loadNative();
  if (native.version !== EXPECTED_VERSION) {
    throw new UnsupportedError(
      `native koffi addon is version ${String(native.version)}, expected ${EXPECTED_VERSION}`,
    );
  }
  loaded = native;
  return native;
}

function embeddedAddon(): Blob | undefined {
  const files = (Bun.embeddedFiles ?? []) as Blob[];
  return files.find((f) => /(^|[\\/])koffi[^\\/]*\.node$/.test((f as Blob & { name?: string }).name ?? ""));
}

function loadNative(): KoffiModule {
  const embedded = embeddedAddon();
  if (embedded) {
    const bytes = new Uint8Array(readBlobSync(embedded));
    return process.platform === "linux" ? loadFromMemfd(bytes) : loadFromRealFile(bytes);
  }
  return loadFromNodeModules();
}

function readBlobSync(blob: Blob): ArrayBuffer {
  // Embedded files live in Bun's virtual file system and can be read synchronously by name.
  const name = (blob as Blob & { name?: string }).name;
  if (!name) throw new UnsupportedError("embedded koffi addon has no name");
  const data = fs.readFileSync(embeddedPath(name));
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

function embeddedPath(name: string): string {
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name)) return name;
  return process.platform === "win32" ? `B:\\~BUN\\root\\${name}` : `/$bunfs/root/${name}`;
}

function dlopenPath(file: string): KoffiModule {
  const mod = { exports: {} as KoffiModule };
  process.dlopen(mod, file);
  return mod.exports;
}

function loadFromMemfd(bytes: Uint8Array): KoffiModule {
  let fd = -1;
  try {
    // bun:ffi is part of the runtime itself, so it is available before koffi is.
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen(libcName(), {
      memfd_create: { args: [FFIType.cstring, FFIType.u32], returns: FFIType.i32 },
    });
    const MFD_CLOEXEC = 1;
    fd = libc.symbols.memfd_create(Buffer.from("sockwarden-koffi\0"), MFD_CLOEXEC);
    libc.close();
  } catch {
    fd = -1;
  }
  if (fd >= 0) {
    fs.writeSync(fd, bytes);
    try {
      return dlopenPath(`/proc/self/fd/${fd}`);
    } catch {
      // /proc may be missing in odd chroots; fall through to a real file.
    }
  }
  return loadFromRealFile(bytes);
}

function libcName(): string {
  return process.arch === "arm64" || process.arch === "x64" ? "libc.so.6" : "libc.so";
}

/** Places the addon in the first directory where a file can be written and loaded. */
function loadFromRealFile(bytes: Uint8Array): KoffiModule {
  const candidates = addonDirectories();
  const errors: string[] = [];
  for (const dir of candidates) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (process.platform === "win32") return dlopenPath(sharedAddonFile(dir, bytes));
      const file = path.join(dir, `koffi-${EXPECTED_VERSION}-${process.pid}.node`);
      fs.writeFileSync(file, bytes, { mode: 0o700 });
      try {
        return dlopenPath(file);
      } finally {
        try {
          fs.unlinkSync(file);
        } catch {}
      }
    } catch (err) {
      errors.push(`${dir}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  throw new UnsupportedError(`cannot load the embedded koffi addon (${errors.join("; ")})`);
}

/**
 * Windows cannot remove a DLL while it is loaded, so the addon is kept under a name made from its
 * contents and shared by every start (and by concurrent ones): written once, checked before each
 * load, replaced when it differs. Files left by earlier builds are removed when no longer in use.
 */
function sharedAddonFile(dir: string, bytes: Uint8Array): string {
  const digest = createHash("sha256").update(bytes).digest("hex");
  const name = `koffi-${EXPECTED_VERSION}-${digest.slice(0, 16)}.node`;
  const file = path.join(dir, name);
  const matches = () => {
    try {
      return createHash("sha256").update(fs.readFileSync(file)).digest("hex") === digest;
    } catch {
      return false;
    }
  };
  if (!matches()) {
    const temporary = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, bytes);
    try {
      fs.renameSync(temporary, file);
    } catch (err) {
      // Another start may have put the same file there (and loaded it) in the meantime.
      try {
        fs.unlinkSync(temporary);
      } catch {}
      if (!matches()) throw err;
    }
  }
  for (const other of fs.readdirSync(dir)) {
    if (other !== name && /^koffi-.*\.node(\.\d+\.tmp)?$/.test(other)) {
      try {
        fs.unlinkSync(path.join(dir, other));
      } catch {
        // Loaded by a running copy of another version: left for a later start.
      }
    }
  }
  return file;
}

function addonDirectories(): string[] {
  const exeDir = path.dirname(process.execPath);
  if (process.platform === "win32") {
    const local = process.env.LOCALAPPDATA;
    return [
      ...(local ? [path.join(local, "sockwarden")] : []),
      path.join(exeDir, ".sockwarden"),
      path.join(os.tmpdir(), "sockwarden"),
    ];
  }
  return [
    path.join(exeDir, ".sockwarden"),
    `/run/sockwarden`,
    `/var/lib/sockwarden`,
    path.join(os.tmpdir(), `sockwarden-${process.getuid?.() ?? 0}`),
  ];
}

function loadFromNodeModules(): KoffiModule {
  const req = createRequire(import.meta.url);
  const dir = `${process.platform === "win32" ? "win32" : process.platform}_${process.arch}`;
  const pkg = `@koromix/koffi-${process.platform}-${process.arch}`;
  try {
    return req(`${pkg}/${dir}/koffi.node`) as KoffiModule;
  } catch (err) {
    throw new UnsupportedError(
      `koffi addon ${pkg} is not installed (run npm ci): ${(err as Error).message.split("\n")[0]}`,
    );
  }
}
