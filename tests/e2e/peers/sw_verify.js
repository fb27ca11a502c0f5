// Verifies captured webhook requests with the official `standardwebhooks`
// npm package (tests/node/node_modules; run with NODE_PATH pointing there).
//
//   node sw_verify.js < checks.json
//
// stdin: a JSON array of {"secret", "id", "timestamp", "signature", "body"}
// (the headers' values, whatever their prefix); stdout: a JSON array with,
// per check, "ok" or the verifier's error message.
"use strict";

const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((c) => {
    try {
      new Webhook(c.secret).verify(c.body, {
        "webhook-id": c.id,
        "webhook-timestamp": c.timestamp,
        "webhook-signature": c.signature,
      });
      return "ok";
    } catch (e) {
      return String(e.message || e);
    }
  });
  process.stdout.write(JSON.stringify(out) + "\n");
});
