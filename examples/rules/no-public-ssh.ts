import { defineRule, isPrivate } from "sockwarden";

// Alert when an SSH session comes from a public address; close it when asked to in options.
export default defineRule({
  name: "no-public-ssh",
  description: "Alert on (or close) SSH sessions from public addresses",
  on: ["opened"],
  options: { close: false, port: 22 },
  handle(event, act, ctx) {
    const ep = event.endpoint;
    if (ep.protocol !== "tcp" || ep.localPort !== ctx.options.port || ep.state !== "ESTABLISHED") return;
    if (isPrivate(ep.remoteAddress)) return;
    if (ctx.options.close) act.close(ep, `SSH from public address ${ep.remoteAddress}`);
    else act.alert(`SSH session from public address ${ep.remoteAddress}`, "critical");
  },
});
