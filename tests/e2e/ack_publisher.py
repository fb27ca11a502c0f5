"""
An acknowledged publisher in a process of its own (cluster_helpers.Publisher
starts it): a DEALER connected to every address, publishing with
AckClient.publish_all. A test that ran it in a thread lost the whole pytest
run once, when libzmq failed an assertion under heavy load inside
recv_multipart and aborted the process; here that fails one test, which
shows this process's stderr.

  python3 ack_publisher.py SPEC.json

SPEC.json: {"addrs": [...], "items": [[event_id, body text], ...], "window",
"resend_after", "deadline", "acked": path, "result": path}. The first answer
of each event is appended to `acked` ("event_id answer" lines, flushed as
they come, so the test can follow the progress); at the end the answers
({event_id: [answers in arrival order]}) go to `result` as JSON.
"""

import json
import os
import sys

from cluster_helpers import MultiAck


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    items = [(eid, body.encode()) for eid, body in spec["items"]]
    seen = set()
    with open(spec["acked"], "a", buffering=1) as acked:
        def on_answer(eid, text):
            if eid not in seen:
                seen.add(eid)
                acked.write(f"{eid} {text}\n")

        with MultiAck(spec["addrs"]) as c:
            answers = c.publish_all(items, window=spec["window"],
                                    resend_after=spec["resend_after"],
                                    deadline=spec["deadline"], on_answer=on_answer)
    tmp = spec["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(answers, f)
    os.rename(tmp, spec["result"])


if __name__ == "__main__":
    main(sys.argv[1])
