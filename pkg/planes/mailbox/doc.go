// Package mailbox is the mailbox plane: durable named message queues with
// leased receives, acknowledgements, redelivery and dead-letter boxes.
//
// # HTTP API
//
//	POST /mailboxes/{box}/messages   body = raw message (<= max_message_bytes)
//	     201 {"id":"..."}            once the message is fsynced
//	     200 {"id":"..."}            Idempotency-Key replay: the original id, no new message
//	     413 too_large, 429 box_full, 429 too_many_boxes, 400 bad_box / bad_idempotency_key
//	POST /mailboxes/{box}/messages:batch  {"messages":[{"body":"<base64>","idempotency_key":"..."}]}
//	     1..100 messages, stored with one commit.
//	     200 {"results":[{"id","status":201|200} or {"error","code","status"}]}, one per
//	     message in order; status is what a single send would have answered
//	     (200 = an idempotency replay, also for a key repeated in the batch;
//	     400 bad_body / bad_idempotency_key, 413 too_large, 429 box_full ...).
//	     A failed commit fails the whole request (507, 500): nothing stored.
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
// # Durability budget
//
//   - A send is durable before its 201: its record is appended to the log
//     and fdatasynced, one fsync shared by every request in the same group
//     commit.
//   - An ack (and a nack, which may dead-letter or delay) is durable before
//     its answer, in the same group commits as sends.
//   - A lease (receive, extend) writes nothing and waits for no fsync. After
//     a crash every leased message is visible again (at-least-once, with
//     duplicates); pre-crash receipts are stale.
//   - The deliveries count a lease raises is written lazily, by the next
//     group commit of any request (a send, an ack; a clean close writes
//     the rest). A message whose previous delivery is
//     not on disk yet is not leased again without a commit: the receive that
//     leases it waits for one. So a crash forgets at most one delivery per
//     message (its newest), and a message can be delivered at most
//     max_deliveries plus one more per crash during its life before it is
//     dead-lettered. While commits fail (full disk) the counts stay pending
//     and such a receive fails too.
//
// # Storage
//
// A segmented append-only log under DataDir/log: files named by a 16-hex-digit
// id, each at most about segment_bytes. Every record is framed as
// crc32c | length | kind | payload (see logfmt.go): a message put (seq,
// meta, body), a meta update (seq, meta), a delete (ack), an idempotency key
// or its deletion, and, first in each segment, the highest seq ever used,
// so ids are never reused. A group commit is one write and one fdatasync of
// the active segment; a failed write is cut back off the file, so a full
// disk (507) leaves the log consistent and writes resume once space is
// freed, without a restart.
//
// At open every segment is replayed in order into an in-memory index (per
// message where its body and newest meta are, per segment its live bytes),
// and the message index (per box a ready heap ordered by seq, a global heap
// of lease deadlines) is rebuilt from it, so receive is O(k log n) and a
// body is one pread. A torn or corrupt tail (a record that is short or
// fails its CRC) is truncated and counted in torn_tails_total; it is never
// fatal, and every record before it is kept. Every change is made in memory
// first and persisted by a group commit that writes the current in-memory
// state of each touched message; the HTTP answer waits for that commit.
//
// A group commit has no goroutine of its own: the request that finds none
// running leads it, committing every queued request in one batch, then
// hands the lead to the oldest request that queued during its fsync.
//
// Compaction runs between group commits, by their leader: the oldest segments are deleted while
// nothing in them is live, and when at least compact_free_ratio of the
// oldest segment is dead its live records are copied forward into the
// active segment (one fsync) and it is deleted too. Segments go oldest
// first, so a delete record never outlives the put it cancels. Under a
// steady send/ack load the log stays within about twice its live data plus
// the active segment.
//
// A data dir of the earlier bbolt version (DataDir/mailbox.db) is migrated
// at start: its contents are written into DataDir/log.tmp, fsynced, renamed
// to DataDir/log, and mailbox.db is renamed to mailbox.db.migrated for the
// operator to delete. Leases in it end.
//
// With Amnesia the same index runs in memory only and nothing is written.
package mailbox
