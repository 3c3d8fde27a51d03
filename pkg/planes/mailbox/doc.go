// Package mailbox is the mailbox plane: durable named message queues with
// leased receives, acknowledgements, redelivery and dead-letter boxes.
//
// # HTTP API
//
//	POST /mailboxes/{box}/messages   body = raw message (<= max_message_bytes)
//	     201 {"id":"..."}            once the message is fsynced
//	     200 {"id":"..."}            Idempotency-Key replay: the original id, no new message
//	     413 too_large, 429 box_full, 429 too_many_boxes, 400 bad_box / bad_idempotency_key
//	POST /mailboxes/{box}/receive?max=10&visibility=30s&wait=0s
//	     200 {"messages":[{"id","body","receipt","deliveries","enqueued_at"}]}
//	     max 1..100 (default 10); visibility 1ms..12h (default 30s); wait 0..20s
//	     (default 0). Durations are Go durations ("200ms", "30s") or whole
//	     seconds ("30"). Bad or unknown parameters answer 400 code "bad_param"
//	     naming the parameter. With wait > 0 the call long-polls: a send to the
//	     box or a lease ending wakes it at once.
//	POST /mailboxes/{box}/ack     {"receipts":[...]}
//	     200 {"acked":n,"results":[{"receipt","status":"acked"|"stale"|"not_found"}]}
//	POST /mailboxes/{box}/nack    {"receipts":[...],"delay":"0s"}      (delay 0..12h)
//	     200 {"nacked":n,"results":[... "nacked"|"stale"|"not_found"]}
//	POST /mailboxes/{box}/extend  {"receipts":[...],"visibility":"30s"} (1ms..12h)
//	     200 {"extended":n,"results":[... "extended"|"stale"|"not_found"]}
//	GET  /mailboxes/{box}  200 {"box","depth","in_flight","oldest_age_seconds","dlq_depth"}
//	GET  /mailboxes        200 {"boxes":[{"box","depth","in_flight"}...]} sorted by name
//
// A receipt is stale once its lease has ended (expiry, nack) or the message
// was delivered again; acks, nacks and extends report that per receipt and
// never fail the whole batch. A batch holds 1..100 receipts.
//
// depth counts the messages stored in a box that are not leased (ready or
// delayed by a nack); in_flight counts leased ones; max_depth caps the sum.
// A box is known once something was sent to it, received from it with a
// wait, or stored in it on disk; GET /mailboxes/{box} answers 404 for a box
// that is not known. Empty idle boxes are forgotten when the max_boxes cap
// needs room, so after a restart an empty box is unknown again.
//
// # Delivery semantics
//
// At-least-once. A message leased by a receive becomes visible again when
// its lease ends unacked; deliveries counts every delivery. Once a message
// has been delivered max_deliveries times and its lease ends (or a receive
// finds it), it moves to the box "{box}.dlq" with the same id, body and
// enqueued_at and deliveries reset to 0. Dead-letter boxes never dead-letter
// further and cannot be sent to directly, only received from and acked. If
// the dead-letter box is full the message stays in its box (never dropped).
//
// # Storage
//
// bbolt at DataDir/mailbox.db (fsync on every commit), three buckets:
//
//	meta:  seq (8 bytes big-endian) -> {box, enqueued_at, visible_at, deliveries, receipt}
//	body:  seq -> message bytes, written once at send
//	idem:  box "\x00" Idempotency-Key -> {created, seq}
//
// The message id is the seq in 16 hex digits, so a dead-letter move rewrites a
// single small meta record and never copies the body. At open the whole meta
// bucket is read once into an in-memory index (per box a ready heap ordered by
// seq, a global heap of lease deadlines), so receive is O(k log n). Every
// change is made in memory first and then persisted by a group commit that
// writes the current in-memory state of each touched message (or deletes it
// when the message is gone); the HTTP answer waits for that commit. Because a
// commit always writes the newest state, commits of different requests may
// land in any order and the file still converges on the in-memory truth.
//
// bbolt never shrinks its file; the plane compacts it (bbolt.Compact into
// mailbox.db.compact, fsync, rename, directory fsync, reopen) at start-up and
// every compact_interval, when the file is at least compact_min_bytes and the
// copy would be at least compact_free_ratio smaller. Writes pause while it
// copies.
//
// With Amnesia the same index runs in memory only and nothing is written.
package mailbox
