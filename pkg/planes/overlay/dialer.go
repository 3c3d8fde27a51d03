package overlay

import (
	"context"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Reconnect backoff of a dial target.
const (
	dialBackoffInitial = 500 * time.Millisecond
	dialBackoffMax     = 30 * time.Second
	dialTimeout        = 10 * time.Second
)

// dialTarget is a peer the overlay keeps a connection to.
type dialTarget struct {
	info     peer.AddrInfo
	bound    bool // bootstrap or POST /overlay/connect: never dropped, never capped
	bo       *backoff.ExponentialBackOff
	next     time.Time // no attempt before this
	inflight bool
}

// dialer keeps connections to its targets: the bootstrap peers, peers named
// by POST /overlay/connect, and peers that gossip led it to. Each target
// that is not connected is dialed, and after a failure dialed again after
// an exponential backoff (cenkalti/backoff). Gossip-learned targets are
// dialed only while fewer than maxPeers peers are connected.
type dialer struct {
	h        host.Host
	log      hclog.Logger
	maxPeers int
	onUp     func(peer.ID)

	mu      sync.Mutex
	targets map[peer.ID]*dialTarget
	kick    chan struct{}
	wg      sync.WaitGroup
}

func newDialer(h host.Host, log hclog.Logger, maxPeers int, onUp func(peer.ID)) *dialer {
	return &dialer{h: h, log: log, maxPeers: maxPeers, onUp: onUp,
		targets: make(map[peer.ID]*dialTarget), kick: make(chan struct{}, 1)}
}

// add makes info a target (merging addresses into an existing one) and
// triggers a dial round at once.
func (d *dialer) add(info peer.AddrInfo, bound bool) {
	if info.ID == d.h.ID() {
		return
	}
	d.mu.Lock()
	t, ok := d.targets[info.ID]
	if !ok {
		bo := backoff.NewExponentialBackOff()
		bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = dialBackoffInitial, dialBackoffMax, 0
		t = &dialTarget{info: peer.AddrInfo{ID: info.ID}, bo: bo}
		d.targets[info.ID] = t
	}
	t.bound = t.bound || bound
	t.info.Addrs = info.Addrs
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// remove drops a gossip-learned target; bound targets stay.
func (d *dialer) remove(id peer.ID) {
	d.mu.Lock()
	if t, ok := d.targets[id]; ok && !t.bound {
		delete(d.targets, id)
	}
	d.mu.Unlock()
}

// run dials due targets every tick (and on add) until ctx ends, then waits
// for the dials under way.
func (d *dialer) run(ctx context.Context, tick time.Duration) {
	defer d.wg.Wait()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		d.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
	}
}

// round starts a dial for each due target that is not connected.
func (d *dialer) round(ctx context.Context) {
	now := time.Now()
	connected := len(d.h.Network().Peers())
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, t := range d.targets {
		if t.inflight || now.Before(t.next) || d.h.Network().Connectedness(id) == network.Connected {
			continue
		}
		if !t.bound && connected >= d.maxPeers {
			continue
		}
		t.inflight = true
		info := peer.AddrInfo{ID: t.info.ID, Addrs: append(t.info.Addrs[:0:0], t.info.Addrs...)}
		d.wg.Add(1)
		go d.dial(ctx, t, info)
	}
}

func (d *dialer) dial(ctx context.Context, t *dialTarget, info peer.AddrInfo) {
	defer d.wg.Done()
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	err := d.h.Connect(dctx, info)
	cancel()
	d.mu.Lock()
	t.inflight = false
	if err == nil {
		t.bo.Reset()
		t.next = time.Time{}
	} else {
		t.next = time.Now().Add(t.bo.NextBackOff())
	}
	next := t.next
	d.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			d.log.Debug("dial failed", "peer", info.ID.String(), "retry_at", next, "error", err)
		}
		return
	}
	d.onUp(info.ID)
}
