/**
 * The Linux platform's reading of /proc, on files the test writes: a process's start (field 22
 * of stat, counted from the last parenthesis, as a command name may hold both), the session's
 * login uid, and the spool lock that uses the start to tell its owner from a process that took
 * its PID over.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { procLoginUid, procStartTime } from "../../src/engine/linux/linux-platform.ts";
import { currentActor } from "../../src/actions/actor.ts";
import { SpoolLock } from "../../src/outputs/spool-lock.ts";
import { FileError } from "../../src/errors.ts";

let root = "";
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "sw-platform-"));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function writeProc(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

describe("Linux platform", () => {
  test("a process's start is field 22 of its stat, whatever its name holds", () => {
    // Fields 3..21 after the name, then the start in clock ticks.
    const rest = ["S", ...Array.from({ length: 18 }, (_, i) => String(i + 4)), "987654", "0"].join(" ");
    writeProc("42/stat", `42 (a) b (c) ${rest}\n`);
    expect(procStartTime(42, root)).toBe("987654");
    expect(procStartTime(43, root)).toBe("");
  });

  test("the login uid: a number, unset (-1) or absent", () => {
    expect(procLoginUid(root)).toBeNull();
    writeProc("self/loginuid", "1000");
    expect(procLoginUid(root)).toBe(1000);
    writeProc("self/loginuid", "4294967295");
    expect(procLoginUid(root)).toBeNull();
    writeProc("self/loginuid", "x1");
    expect(procLoginUid(root)).toBeNull();
  });

  test("the actor names the login user the platform gives, and none when it gives none", () => {
    const ids = { uid: 0, euid: 0 };
    expect(currentActor({ ids, env: {}, login: () => ({ uid: 1000, name: "ann" }) })).toEqual({ uid: 0, euid: 0, loginUid: 1000, loginUser: "ann" });
    expect(currentActor({ ids, env: { SUDO_USER: "ann" }, login: () => null })).toEqual({ uid: 0, euid: 0, sudoUser: "ann" });
  });
});

describe("spool lock and process start times", () => {
  test("a live PID whose start differs from the lock's is another process: the lock is taken over", () => {
    // This process is alive; the lock says it started at another time, so it is not the owner.
    fs.writeFileSync(path.join(root, "lock"), `${process.ppid} 111\n`);
    const lock = SpoolLock.take(root, "a sink", (pid) => (pid === process.ppid ? "222" : "9"));
    expect(fs.readFileSync(path.join(root, "lock"), "utf8")).toBe(`${process.pid} 9\n`);
    lock.release();
  });

  test("a live PID with the lock's start is the owner: refused", () => {
    fs.writeFileSync(path.join(root, "lock"), `${process.ppid} 111\n`);
    expect(() => SpoolLock.take(root, "a sink", () => "111")).toThrow(FileError);
  });
});
