package mailbox

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/macronode/macronode/pkg/fsx"
)

func beU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// write is one materialised change: the state a message or idempotency key
// has in memory at commit time.
type write struct {
	seq     uint64
	meta    []byte // nil: delete the message
	body    []byte // the body (first commit of a send)
	putBody bool
	idemKey string // when set, this write is for the idempotency key instead
	idemVal []byte // nil: delete idemKey
}

// batch is a set of records about to be appended to the active segment,
// with the index changes they make once durable.
type batch struct {
	seg   *segment
	buf   []byte
	msgs  map[uint64]*msgLoc // nil value: deleted
	idem  map[string]*idemLoc
	hiSeq uint64
}

func (st *store) newBatch(seg *segment) *batch {
	return &batch{seg: seg, msgs: make(map[uint64]*msgLoc), idem: make(map[string]*idemLoc)}
}

// msg returns the newest location of seq, staged or published.
func (st *store) msg(b *batch, seq uint64) *msgLoc {
	if l, ok := b.msgs[seq]; ok {
		return l
	}
	return st.msgs[seq]
}

func (b *batch) off() int64 { return b.seg.size + int64(len(b.buf)) }

func (st *store) stage(b *batch, w write) {
	if w.idemKey != "" {
		k := u16(len(w.idemKey))
		start := b.off()
		if w.idemVal == nil {
			if _, ok := b.idem[w.idemKey]; !ok && st.idem[w.idemKey] == nil {
				return
			}
			b.buf = appendRecord(b.buf, recIdemDel, k, []byte(w.idemKey))
			b.idem[w.idemKey] = nil
			return
		}
		b.buf = appendRecord(b.buf, recIdem, k, []byte(w.idemKey), w.idemVal)
		b.idem[w.idemKey] = &idemLoc{seg: b.seg.id, val: w.idemVal, n: b.off() - start}
		return
	}
	cur := st.msg(b, w.seq)
	start := b.off()
	switch {
	case w.meta == nil:
		if cur == nil {
			return
		}
		b.buf = appendRecord(b.buf, recDel, u64(w.seq))
		b.msgs[w.seq] = nil
	case w.putBody:
		prefix := putPrefix(w.seq, w.meta)
		b.buf = appendRecord(b.buf, recPut, prefix, w.body)
		b.msgs[w.seq] = &msgLoc{seg: b.seg.id, bodyOff: start + recHeader + int64(len(prefix)),
			bodyLen: len(w.body), putLen: b.off() - start, meta: w.meta}
		b.hiSeq = max(b.hiSeq, w.seq)
	default:
		if cur == nil {
			return // acked meanwhile: its delete is (or was) written
		}
		b.buf = appendRecord(b.buf, recMeta, u64(w.seq), w.meta)
		l := *cur
		l.meta, l.metaSeg, l.metaLen = w.meta, b.seg.id, b.off()-start
		b.msgs[w.seq] = &l
	}
}

// appendBatch makes ws durable with one write and one fdatasync. The
// commit leader is the only caller.
func (st *store) appendBatch(ws []write) error {
	seg := st.active()
	if seg == nil {
		return errStoreClosed
	}
	if seg.size >= st.segBytes {
		// When no new segment can be made (a full disk) the active one
		// grows on: an ack must still be able to land somewhere.
		if err := st.rotate(); err != nil {
			st.log.Warn("cannot start a new log segment; appending to the current one", "error", err)
		} else {
			seg = st.active()
		}
	}
	b := st.newBatch(seg)
	st.mu.RLock()
	for _, w := range ws {
		st.stage(b, w)
	}
	st.mu.RUnlock()
	return st.publish(b)
}

// publish writes b and, once it is durable, moves its changes into the
// index and the live byte counts.
func (st *store) publish(b *batch) error {
	if len(b.buf) == 0 {
		return nil
	}
	if err := st.writeSync(b.seg, b.buf); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	b.seg.size += int64(len(b.buf))
	st.hiSeq = max(st.hiSeq, b.hiSeq)
	for seq, l := range b.msgs {
		old := st.msgs[seq]
		if old != nil {
			st.forget(old, l)
		}
		if l == nil {
			delete(st.msgs, seq)
			continue
		}
		st.msgs[seq] = l
		if old == nil || l.seg != old.seg || l.bodyOff != old.bodyOff {
			st.segs[l.seg].live += l.putLen
		}
		if l.metaSeg != 0 {
			st.segs[l.metaSeg].live += l.metaLen
		}
	}
	for k, l := range b.idem {
		if old := st.idem[k]; old != nil {
			st.segs[old.seg].live -= old.n
		}
		if l == nil {
			delete(st.idem, k)
			continue
		}
		st.idem[k] = l
		st.segs[l.seg].live += l.n
	}
	return nil
}

// forget takes old's records out of the live counts, except those that
// replacement l still uses (a meta update keeps the put record).
func (st *store) forget(old, l *msgLoc) {
	if l == nil || l.seg != old.seg || l.bodyOff != old.bodyOff {
		st.segs[old.seg].live -= old.putLen
	}
	if old.metaSeg != 0 {
		st.segs[old.metaSeg].live -= old.metaLen
	}
}

// compact deletes the oldest segments while nothing in them is live, and
// copies the live records of the oldest one forward into the active segment
// when at least deadRatio of it is dead, so that it can be deleted too. At
// most one segment is copied per call. The commit leader calls it between
// commits.
func (st *store) compact() (deleted int, err error) {
	copied := false
	for {
		st.mu.RLock()
		if st.closed || len(st.order) < 2 {
			st.mu.RUnlock()
			break
		}
		old := st.segs[st.order[0]]
		live, size := old.live, old.size
		st.mu.RUnlock()
		if live > 0 {
			if copied || float64(size-live) < st.deadRatio*float64(size) {
				break
			}
			if err = st.copyForward(old); err != nil {
				break
			}
			copied = true
		}
		var dropped bool
		if dropped, err = st.drop(old); err != nil || !dropped {
			break
		}
		deleted++
	}
	if deleted > 0 {
		if serr := fsx.SyncDir(st.dir); serr != nil && err == nil {
			err = serr
		}
	}
	return deleted, err
}

// copyForward rewrites every live record of old into the active segment.
func (st *store) copyForward(old *segment) error {
	var ws []write
	st.mu.RLock()
	for seq, l := range st.msgs {
		switch {
		case l.seg == old.id:
			ws = append(ws, write{seq: seq, meta: l.meta, putBody: true})
		case l.metaSeg == old.id:
			ws = append(ws, write{seq: seq, meta: l.meta})
		}
	}
	for k, l := range st.idem {
		if l.seg == old.id {
			ws = append(ws, write{idemKey: k, idemVal: l.val})
		}
	}
	st.mu.RUnlock()
	for i := range ws {
		if !ws[i].putBody {
			continue
		}
		body, ok, err := st.readBody(ws[i].seq)
		if err != nil {
			return fmt.Errorf("compact segment %d: %w", old.id, err)
		}
		if !ok { // deleted meanwhile: nothing to copy
			ws[i].meta, ws[i].putBody = nil, false
		}
		ws[i].body = body
	}
	if err := st.appendBatch(ws); err != nil {
		return fmt.Errorf("compact segment %d: %w", old.id, err)
	}
	return nil
}

// drop deletes the oldest segment old if it holds nothing live.
func (st *store) drop(old *segment) (bool, error) {
	st.mu.Lock()
	if old.live != 0 || len(st.order) < 2 || st.order[0] != old.id {
		st.mu.Unlock()
		return false, nil
	}
	st.order = st.order[1:]
	delete(st.segs, old.id)
	st.mu.Unlock()
	path := filepath.Join(st.dir, segName(old.id))
	if err := old.f.Close(); err != nil {
		st.log.Warn("close compacted segment", "segment", path, "error", err)
	}
	if err := os.Remove(path); err != nil {
		return true, fmt.Errorf("remove compacted segment %s: %w", path, err)
	}
	return true, nil
}
