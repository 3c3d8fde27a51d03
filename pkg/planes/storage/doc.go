// Package storage is macronode's storage plane: a content-addressed blob
// store whose addresses are BLAKE3-256 hashes written "b3:<64 lowercase hex>".
//
// # HTTP API
//
//	POST /o            body = blob
//	                   201 {"address":"b3:…","size":n}  stored now
//	                   200 {"address":"b3:…","size":n}  already stored (dedup hit,
//	                                                     counted in dedup_hits_total)
//	                   413 larger than --max-object-bytes, 507 storage full
//	PUT  /o/{addr}     body = blob whose address the caller knows; kept only
//	                   if it hashes to {addr}: the answers of POST /o, plus
//	                   422 "hash_mismatch" (nothing kept), 400 bad address
//	GET  /o?after=&limit=
//	                   200 {"addresses":["b3:…",…],"next":"b3:…"|""}: up to
//	                   limit (default 1000, at most 10000) stored addresses
//	                   greater than after, ascending; next is the last one
//	                   when more follow ("" on the last page); 400
//	                   "bad_after" / "bad_limit". Internal: not routed by
//	                   the gateway
//	GET  /o/{addr}     200 the blob (206 with Range), 304 on If-None-Match,
//	                   400 bad address (code "bad_address"), 404 unknown,
//	                   416 unsatisfiable or malformed range,
//	                   500 "corrupt" when the blob failed verification
//	HEAD /o/{addr}     headers only (Content-Length = size); not verified
//
// Responses carry ETag: "b3:<hex>" (quoted), Cache-Control: public,
// max-age=31536000, immutable, Content-Type: application/octet-stream and
// Accept-Ranges: bytes. Every error is JSON (pkg/httpx). Range supports one
// range ("bytes=a-b", "bytes=a-", "bytes=-n"); a request for several ranges
// or another unit gets the whole object, as RFC 9110 allows; If-Range with a
// different tag also gets the whole object.
//
// # Uploads
//
// POST /o and PUT /o/{addr} stream the body the same way: it is hashed
// while written to a temp file in DataDir/tmp (same file system as the
// objects). A PUT body that hashes to another address than {addr} is
// refused there (422) and its temp file removed. Otherwise it is fsynced,
// closed, and renamed with RENAME_NOREPLACE into DataDir/objects/<hex[0:2]>/<hex>
// (the 256 shard directories exist from the store's first open on, so no
// upload creates one); the shard directory is fsynced before the client
// hears 201. A second upload of the same
// content is recognised after hashing: the stored copy is read back and
// hashed (so a dedup hit costs one full read of the stored object); if it
// is good, the shard directory is fsynced (the copy may have just been
// renamed in by a concurrent upload), the temp file is removed and the
// client gets 200; if it is damaged (wrong size or bytes), it is quarantined
// and the fresh upload takes its place (201). Two identical uploads racing
// each other are settled by the no-replace rename, the loser checking the
// winner's copy the same way. Oversized bodies, full disks (ENOSPC/EDQUOT at
// any step), and bodies that break off remove the temp file; temp files
// left by a crash are removed when the store opens. The store holds an
// exclusive flock on DataDir/LOCK while open: a second process on the same
// directory fails to start ("data dir … is in use by another process")
// instead of deleting the first one's uploads in progress.
//
// # Slow clients
//
// Transfers are not bound by the runtime's whole-request timeouts: each read
// of an upload body and each write of a download must make progress within
// --io-idle-timeout (30s; httpx.Progress). A slow transfer that keeps moving
// is never cut; an upload that stalls gets 408 JSON and its connection is
// closed, a download that stalls is aborted.
//
// # Verification
//
// Nothing on disk is trusted: GET hashes what it serves, and a blob whose
// bytes do not match its address is never delivered as a complete, clean
// response.
//
//   - Full GET of a blob up to VerifyBeforeSendBytes (8 MiB): the whole blob is
//     hashed before the first byte is sent; corrupt => 500 JSON (code
//     "corrupt").
//   - Full GET of a larger blob: it is streamed in --chunk-bytes pieces and
//     hashed as it goes; the final piece is held back until the hash is
//     known, and on a mismatch the response is aborted (the client sees a
//     transfer cut short of Content-Length, never a clean end).
//   - Range GET, any size: the whole blob is hashed first (the file is read
//     twice), then the range is sent; corrupt => 500 JSON. Correctness over
//     speed: a range is never served from an unverified blob. Hashing stops
//     as soon as the client goes away.
//   - HEAD sends no blob bytes and is not verified.
//
// A verified-copy cache (an LRU of 4096 entries) remembers stored copies
// that hashed correctly — after a range GET, a small full GET or a streamed
// full GET — keyed by address and the copy's identity: device and inode,
// size, modification time and (on Linux) change time. Range GETs and small
// full GETs of a copy in the cache skip the hash
// (macronode_storage_verify_cache_hits_total). Any write to the file or its
// replacement changes the key, so the copy is verified afresh; a write that
// left size, mtime and ctime all unchanged (within the file system's clock
// granularity) would go unnoticed until the entry is evicted or the blob is
// streamed in full.
//
// A blob that fails verification is moved to DataDir/quarantine/ (dropped,
// in amnesia mode), counted in macronode_storage_verify_failures_total, and
// later GETs answer 404 until the content is uploaded again. Quarantine acts
// on the very copy that was read: if another request quarantined it first
// and a fresh upload has stored the content again meanwhile, the new copy
// is left alone.
//
// # Amnesia
//
// With Config.Amnesia the blobs live in a memory store capped at
// --amnesia-max-bytes; uploads that would pass the cap get 507. Nothing is
// created or written under DataDir.
//
// # Metrics
//
// On the registry given to New, prefixed macronode_storage_: objects and
// bytes (gauges, counted at start-up by walking objects/ — one readdir per
// shard and one lstat per blob — then kept current), puts_total,
// dedup_hits_total, put_bytes_total, put_failures_total{reason},
// gets_total, get_bytes_total, verify_failures_total and
// verify_cache_hits_total. A file truncated
// or grown behind the store's back can make the bytes gauge drift until the
// next start-up walk.
//
// The Store interface (DiskStore, MemStore) is what the HTTP handler is
// built on. Nothing else reaches the store: other planes use the HTTP API —
// the gateway's fetcher spools blobs fetched from peers through PUT
// /o/{addr}, and the DHT walks GET /o?after= to reprovide what is stored.
package storage
