package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/macronode/macronode/pkg/config"
)

// probeTimeout bounds each request doctor makes to a node that may be up.
const probeTimeout = 2 * time.Second

// runningNode is what doctor learnt from a macronode answering on http_addr.
type runningNode struct {
	held []heldAddr // the node's listeners, from /api/v1/status
}

type heldAddr struct {
	addr, by string
}

// probeNode asks http_addr whether a macronode is running there (GET
// /version), then which addresses it listens on (GET /api/v1/status). It
// returns nil and no line when nothing answers, or when what answers is
// not a macronode.
func probeNode(ctx context.Context, cfg *config.Config) (*runningNode, *checkResult) {
	cl, err := newClient(cfg)
	if err != nil {
		return nil, nil
	}
	defer cl.close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var info struct {
		Service string `json:"service"`
		Version string `json:"version"`
	}
	if err := cl.do(ctx, http.MethodGet, "/version", &info); err != nil || info.Service != "macronode" {
		return nil, nil
	}
	n := &runningNode{}
	n.held = append(n.held, heldAddr{cfg.HTTPAddr, "admin API, version " + info.Version})
	doc, err := cl.status(ctx)
	if err != nil {
		return n, &checkResult{checkWarn, "running node", fmt.Sprintf("macronode %s answers at %s, but its status is unavailable (%v): only the admin port is known to be its own", info.Version, cl.base, err)}
	}
	if doc.HTTPAddr != "" && doc.HTTPAddr != cfg.HTTPAddr {
		n.held = append(n.held, heldAddr{doc.HTTPAddr, "admin API, version " + info.Version})
	}
	if doc.MetricsAddr != "" {
		n.held = append(n.held, heldAddr{doc.MetricsAddr, "metrics, version " + info.Version})
	}
	names := make([]string, 0, len(doc.Services))
	for name := range doc.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := doc.Services[name]
		if s.Listen == "" {
			continue
		}
		by := fmt.Sprintf("%s, state %s", config.BinaryName(name), dash(s.State))
		if s.PID > 0 {
			by = fmt.Sprintf("%s pid %d", config.BinaryName(name), s.PID)
		}
		n.held = append(n.held, heldAddr{s.Listen, by + ", version " + info.Version})
	}
	return n, &checkResult{checkOK, "running node", fmt.Sprintf("macronode %s answers at %s; the ports it holds are not failures", info.Version, cl.base)}
}

// holder says which part of the running node listens on addr.
func (n *runningNode) holder(addr string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, h := range n.held {
		if sameAddr(h.addr, addr) {
			return h.by, true
		}
	}
	return "", false
}

// sameAddr reports whether two listen addresses name one socket: the same
// port, and the same host or a wildcard host on either side.
func sameAddr(a, b string) bool {
	if a == b {
		return true
	}
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}
