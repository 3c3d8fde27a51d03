package svcrt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/control"
)

const (
	// dialTimeout bounds connecting to the parent's control socket.
	dialTimeout = 5 * time.Second
	// sendTimeout bounds one control write, so a parent that stops reading
	// cannot wedge the child; a timed-out write counts as a lost connection.
	sendTimeout = 5 * time.Second
)

// controlClient is the child's end of the control channel. One goroutine
// reads parent messages, one sends heartbeats; Close stops both.
type controlClient struct {
	conn     net.Conn
	enc      *control.Encoder
	log      hclog.Logger
	onReload func(cfg []byte) // called from the read loop; must not block long

	shutdown chan control.Message // the first shutdown request (buffered)
	lost     chan struct{}        // closed when the connection fails
	lostErr  error                // set before lost is closed
	lostOnce sync.Once

	closing   atomic.Bool
	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// dialControl connects to the parent at path, says hello and starts the read
// and heartbeat loops. onReload (may be nil) receives each reload payload.
func dialControl(ctx context.Context, path, service, token string, log hclog.Logger, onReload func([]byte)) (*controlClient, error) {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("dial control socket %s: %w", path, err)
	}
	c := &controlClient{
		conn:     conn,
		enc:      control.NewConnEncoder(conn, sendTimeout),
		log:      log,
		onReload: onReload,
		shutdown: make(chan control.Message, 1),
		lost:     make(chan struct{}),
		stop:     make(chan struct{}),
	}
	if err := c.enc.Send(control.Hello(service, os.Getpid(), token, buildinfo.Version)); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("say hello on control socket %s: %w", path, err)
	}
	c.wg.Add(2)
	go c.readLoop()
	go c.heartbeatLoop()
	return c, nil
}

// send writes m; a failure marks the connection lost.
func (c *controlClient) send(m control.Message) error {
	if err := c.enc.Send(m); err != nil {
		c.fail(err)
		return err
	}
	return nil
}

// fail records the first connection failure, unless we are closing it.
func (c *controlClient) fail(err error) {
	if c.closing.Load() {
		return
	}
	c.lostOnce.Do(func() {
		c.lostErr = err
		close(c.lost)
	})
}

// Lost is closed when the connection to the parent fails.
func (c *controlClient) Lost() <-chan struct{} { return c.lost }

// Err is why the connection was lost; valid once Lost is closed.
func (c *controlClient) Err() error {
	select {
	case <-c.lost:
		return c.lostErr
	default:
		return nil
	}
}

func (c *controlClient) readLoop() {
	defer c.wg.Done()
	dec := control.NewDecoder(c.conn)
	for {
		m, err := dec.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("parent closed the connection")
			} else {
				err = fmt.Errorf("read control message: %w", err)
			}
			c.fail(err)
			return
		}
		switch m.Type {
		case control.TypeShutdown:
			select {
			case c.shutdown <- m:
			default: // a shutdown is already pending
			}
		case control.TypeReload:
			if c.onReload != nil {
				c.onReload(m.Config)
			}
		default:
			c.log.Warn("ignoring unexpected control message from parent", "type", string(m.Type))
		}
	}
}

func (c *controlClient) heartbeatLoop() {
	defer c.wg.Done()
	t := time.NewTicker(control.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.lost:
			return
		case <-t.C:
			if err := c.send(control.Heartbeat()); err != nil {
				return
			}
		}
	}
}

// Close stops the loops and closes the connection; it is idempotent.
func (c *controlClient) Close() {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		close(c.stop)
		_ = c.conn.Close()
		c.wg.Wait()
	})
}
