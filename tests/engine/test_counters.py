"""Each upload knows the bytes it sent, whatever the others send at the same time."""

from __future__ import annotations

import threading

from syncagent.engine.upload import Counters


def test_uploads_sending_at_once_each_count_their_own_bytes() -> None:
    counters = Counters()

    def send(upload_id: int, part: int, parts: int) -> None:
        for _ in range(parts):
            counters.add(sent=part, upload_id=upload_id)

    threads = [
        threading.Thread(target=send, args=(1, 65_536, 200)),
        threading.Thread(target=send, args=(2, 8 << 20, 50)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert counters.sent_for(1) == 200 * 65_536
    assert counters.sent_for(2) == 50 * (8 << 20)
    assert counters.bytes_sent == 200 * 65_536 + 50 * (8 << 20)
    assert counters.sent_for(1) == 0  # told once
