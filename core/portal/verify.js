// verify.js - how a receiver checks this endpoint's signatures, in Python,
// Node and C, with the endpoint's header names (its header_prefix).
import {copyButton, h} from "./dom.js";

function snippets(p) {
  const python = `# pip install standardwebhooks
from standardwebhooks.webhooks import Webhook

wh = Webhook(SECRET)  # "whsec_...", from this page

def verify(body: bytes, headers) -> dict:
    """Raises WebhookVerificationError when the signature does not match."""
    return wh.verify(body, {
        "webhook-id": headers["${p}-id"],
        "webhook-timestamp": headers["${p}-timestamp"],
        "webhook-signature": headers["${p}-signature"],
    })
`;
  const node = `// npm install standardwebhooks
import { Webhook } from "standardwebhooks";

const wh = new Webhook(process.env.WEBHOOK_SECRET); // "whsec_..."

// body: the raw request body as a string, before any JSON parsing
export function verify(body, headers) {
  return wh.verify(body, {
    "webhook-id": headers["${p}-id"],
    "webhook-timestamp": headers["${p}-timestamp"],
    "webhook-signature": headers["${p}-signature"],
  }); // throws when the signature does not match
}
`;
  const c = `/* cc receiver.c $(pkg-config --cflags --libs --static switchyard) */
#include <time.h>
#include <switchyard/webhook.h>

/* id, timestamp, signature: the values of the ${p}-id, ${p}-timestamp and
 * ${p}-signature headers; body, len: the raw request body. */
int verify(const char *secret, const char *id, const char *timestamp,
           const char *signature, const void *body, size_t len)
{
    int rc = sy_webhook_verify(secret, id, timestamp, signature, body, len,
                               SY_WEBHOOK_TOLERANCE_S, (int64_t)time(NULL));
    return rc == SY_WEBHOOK_OK; /* else sy_webhook_strerror(rc) says why */
}
`;
  return [["Python", python], ["Node", node], ["C (libswitchyard)", c]];
}

export function verifySection(prefix) {
  return h("section", {"aria-labelledby": "verify-title"},
    h("h3", {id: "verify-title"}, "How to verify"),
    h("p", {}, "Each delivery carries the headers ", h("code", {}, prefix + "-id"), ", ",
      h("code", {}, prefix + "-timestamp"), " and ", h("code", {}, prefix + "-signature"),
      " (Standard Webhooks). Check them over the raw body before trusting it."),
    snippets(prefix).map(([name, text]) => h("div", {class: "snippet"},
      h("h4", {}, name), h("pre", {tabindex: "0", "aria-label": name + " example"}, text),
      copyButton(() => text, "Copy " + name + " example"))));
}
