import { defineRule } from "sockwarden";

const MAIL = ["master", "smtpd", "smtp", "exim4", "exim", "sendmail", "opensmtpd", "postfix", "qmail-remote"];

export default defineRule({
  name: "smtp-guard",
  description: "Close ESTABLISHED connections to port 25 from processes that are not mail servers",
  on: ["opened", "state-changed"],
  options: { mailServers: MAIL, port: 25 },
  // Only these reach handle: the daemon leaves every other connection out before calling it.
  select: (o) => ({ protocols: "tcp", states: "ESTABLISHED", remotePorts: o.port }),
  handle(event, act, ctx) {
    const ep = event.endpoint;
    if (ep.protocol !== "tcp" || ep.state !== "ESTABLISHED" || ep.remotePort !== ctx.options.port) return;
    const name = ep.process?.name ?? "";
    // Windows names carry ".exe"; names compare without it and without case.
    const key = name.replace(/\.exe$/i, "").toLowerCase();
    if (!ctx.options.mailServers.some((m) => m.toLowerCase() === key) || key === "") {
      act.close(ep, `${name || "unknown process"} is not a mail server`);
    }
  },
});
