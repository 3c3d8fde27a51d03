package mailbox

// mheap is an indexed binary min-heap of messages. Each message records its
// position through pos so it can be removed or re-ordered in O(log n).
type mheap struct {
	items []*message
	less  func(a, b *message) bool
	pos   func(m *message) *int
}

func newReadyHeap() mheap {
	return mheap{less: bySeq, pos: func(m *message) *int { return &m.qidx }}
}

func newAllHeap() mheap {
	return mheap{less: byEnqueued, pos: func(m *message) *int { return &m.aidx }}
}

func newTimedHeap() mheap {
	return mheap{less: byVisible, pos: func(m *message) *int { return &m.qidx }}
}

func bySeq(a, b *message) bool { return a.seq < b.seq }

func byEnqueued(a, b *message) bool {
	if a.enqueuedAt.Equal(b.enqueuedAt) {
		return a.seq < b.seq
	}
	return a.enqueuedAt.Before(b.enqueuedAt)
}

func byVisible(a, b *message) bool {
	if a.visibleAt.Equal(b.visibleAt) {
		return a.seq < b.seq
	}
	return a.visibleAt.Before(b.visibleAt)
}

func (h *mheap) len() int { return len(h.items) }

func (h *mheap) peek() *message {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func (h *mheap) push(m *message) {
	h.items = append(h.items, m)
	*h.pos(m) = len(h.items) - 1
	h.up(len(h.items) - 1)
}

// remove takes m out of the heap; m must be in it.
func (h *mheap) remove(m *message) {
	i := *h.pos(m)
	last := len(h.items) - 1
	if i < 0 || i > last || h.items[i] != m {
		return
	}
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	*h.pos(m) = -1
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
}

// fix restores the order after m's key changed.
func (h *mheap) fix(m *message) {
	i := *h.pos(m)
	if i < 0 || i >= len(h.items) || h.items[i] != m {
		return
	}
	if !h.down(i) {
		h.up(i)
	}
}

func (h *mheap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.pos(h.items[i]) = i
	*h.pos(h.items[j]) = j
}

func (h *mheap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(h.items[j], h.items[i]) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h *mheap) down(i0 int) bool {
	i, n := i0, len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			j = r
		}
		if !h.less(h.items[j], h.items[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
