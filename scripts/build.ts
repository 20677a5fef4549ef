/**
 * Builds the single-file executables.
 *   bun scripts/build.ts          dist/sockwarden for this machine
 *   bun scripts/build.ts --all    dist/sockwarden-linux-x64, -linux-arm64, -windows-x64.exe
 *   bun scripts/build.ts --target windows-x64    only the named target(s) of --all
 *
 * koffi's addon for each target is embedded as an extra file (see src/engine/native/koffi-addon.ts).
 * npm installs only the host's addon package, so other targets' packages are fetched from the npm
 * registry with `npm pack` into .cache/ the first time they are needed.
 */
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";

interface Target {
  bun: string;
  outfile: string;
  koffiPackage: string;
  koffiDir: string;
}

const root = path.resolve(import.meta.dirname, "..");
const koffiVersion = JSON.parse(fs.readFileSync(path.join(root, "node_modules/koffi/package.json"), "utf8")).version as string;
const pkgVersion = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).version as string;

function target(os: "linux" | "windows", arch: "x64" | "arm64", outfile: string): Target {
  const kos = os === "windows" ? "win32" : "linux";
  return { bun: `bun-${os}-${arch}`, outfile, koffiPackage: `@koromix/koffi-${kos}-${arch}`, koffiDir: `${kos}_${arch}` };
}

function hostTarget(): Target {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  if (process.platform === "win32") return target("windows", arch, "dist/sockwarden.exe");
  return target("linux", arch, "dist/sockwarden");
}

function run(cmd: string, args: string[], cwd = root): void {
  const r = spawnSync(cmd, args, { cwd, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status ?? r.signal}`);
}

/** Path of the target's koffi.node, fetching the package when npm skipped it for this OS/CPU. */
function koffiAddon(t: Target): string {
  const installed = path.join(root, "node_modules", t.koffiPackage, t.koffiDir, "koffi.node");
  if (fs.existsSync(installed)) return installed;
  const cacheDir = path.join(root, ".cache", `${t.koffiPackage.replace("/", "+")}-${koffiVersion}`);
  const cached = path.join(cacheDir, "package", t.koffiDir, "koffi.node");
  if (fs.existsSync(cached)) return cached;
  fs.mkdirSync(cacheDir, { recursive: true });
  const packed = spawnSync("npm", ["pack", `${t.koffiPackage}@${koffiVersion}`, "--silent", "--pack-destination", cacheDir], {
    cwd: cacheDir,
    encoding: "utf8",
  });
  if (packed.status !== 0) throw new Error(`npm pack ${t.koffiPackage} failed: ${packed.stderr}`);
  const tarball = path.join(cacheDir, packed.stdout.trim().split("\n").pop()!);
  run("tar", ["-xzf", tarball, "-C", cacheDir]);
  if (!fs.existsSync(cached)) throw new Error(`${t.koffiPackage} has no ${t.koffiDir}/koffi.node`);
  return cached;
}

function writeVersion(): void {
  const file = path.join(root, "src/version.ts");
  const text = `/** The version printed by --version; kept in step with package.json by the build. */\nexport const VERSION = "${pkgVersion}";\n`;
  if (fs.readFileSync(file, "utf8") !== text) fs.writeFileSync(file, text);
}

function build(t: Target): void {
  const addon = koffiAddon(t);
  fs.mkdirSync(path.join(root, "dist"), { recursive: true });
  const started = performance.now();
  run(process.execPath, [
    "build",
    "--compile",
    `--target=${t.bun}`,
    // Bytecode halves start-up time (module evaluation ~30 ms -> ~10 ms); it needs ESM output.
    "--bytecode",
    "--format=esm",
    "--minify-syntax",
    "--minify-whitespace",
    "--sourcemap=none",
    // A standalone executable otherwise reads bunfig.toml (whose `preload` runs scripts) and .env
    // from the working directory it is started in: host code and settings nobody installed.
    "--no-compile-autoload-bunfig",
    "--no-compile-autoload-dotenv",
    "src/main.ts",
    addon,
    "--outfile",
    t.outfile,
  ]);
  const size = fs.statSync(path.join(root, t.outfile)).size;
  console.log(`built ${t.outfile} (${(size / 1048576).toFixed(1)} MiB) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

writeVersion();
run(process.execPath, ["scripts/gen-plugins.ts"]);
const all = process.argv.includes("--all");
// `--target windows-x64` (repeatable) builds only the named cross targets, e.g. for the wine test.
const only = process.argv.flatMap((a, i) => (a === "--target" ? [process.argv[i + 1] ?? ""] : a.startsWith("--target=") ? [a.slice(9)] : []));
const crossTargets = [
  target("linux", "x64", "dist/sockwarden-linux-x64"),
  target("linux", "arm64", "dist/sockwarden-linux-arm64"),
  target("windows", "x64", "dist/sockwarden-windows-x64.exe"),
];
const chosen = crossTargets.filter((t) => only.includes(t.bun.replace(/^bun-/, "")));
if (chosen.length !== only.length) {
  throw new Error(`unknown --target in ${only.join(", ")}; choose from ${crossTargets.map((t) => t.bun.replace(/^bun-/, "")).join(", ")}`);
}
const targets = all ? crossTargets : only.length > 0 ? chosen : [hostTarget()];
for (const t of targets) build(t);
