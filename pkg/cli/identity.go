package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/identity"
	"github.com/macronode/macronode/pkg/node"
)

// maxKeygenCount bounds `keygen --count`.
const maxKeygenCount = 1000

func idCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "id",
		Usage:     "print this node's id (the libp2p peer id of its node key)",
		UsageText: "macronode id [--config PATH] [--http-addr ADDR] [--data-dir DIR]",
		Description: "The node id names this node in the cluster. Other nodes bootstrap from it:\n" +
			"their network.bootstrap (or --bootstrap) multiaddrs end in /p2p/<node id>, and\n" +
			"GET /api/v1/status lists this node's full addresses as node.addrs.\n\n" +
			"Asks the running node first (GET /api/v1/status). When no node answers, reads\n" +
			"the key file DATA_DIR/node.key (created on the first `macronode run`, or by\n" +
			"`macronode keygen`) without creating it. Exit 1 when neither gives an id (an\n" +
			"amnesiac node has a new id on every run, so only the running node knows it).\n" +
			"Never prints the key itself.\n\n" +
			"Example:\n   macronode id\n   12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo\n" +
			"   macronode run --bootstrap /ip4/10.0.0.1/tcp/9101/p2p/$(ssh node1 macronode id)",
		Flags: clientFlags(&ucli.StringFlag{Name: "data-dir", Usage: "`DIR` holding node.key; default from the config (RON_DATA_DIR)"}),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("id takes no arguments")
			}
			cfg, err := loadConfig(c, env, c.String("config"),
				overrides(c, []flagField{{"http-addr", "http_addr"}, {"data-dir", "data_dir"}}))
			if err != nil {
				return err
			}
			cl, err := newClient(cfg)
			if err != nil {
				return configErr(err)
			}
			defer cl.close()
			doc, err := cl.status(c.Context)
			if err == nil && doc.Node.ID != "" {
				fmt.Fprintln(env.Stdout, doc.Node.ID)
				return nil
			}
			why := "it does not report a node id"
			if err != nil {
				why = err.Error()
			}
			if cfg.Amnesia {
				return failure(fmt.Errorf("no node id: the node at %s: %s; under amnesia the id exists only in the running node", cl.base, why))
			}
			path := node.NodeKeyPath(cfg)
			key, kerr := identity.Load(path)
			if errors.Is(kerr, fs.ErrNotExist) {
				return failure(fmt.Errorf("no node id: the node at %s: %s; and there is no key file %s yet "+
					"(`macronode run` creates it, `macronode keygen --out %s` writes one)", cl.base, why, path, path))
			}
			if kerr != nil {
				return failure(fmt.Errorf("no node id: %w", kerr))
			}
			id, kerr := identity.NodeID(key)
			if kerr != nil {
				return failure(kerr)
			}
			fmt.Fprintln(env.Stdout, id)
			return nil
		},
	}
}

func peersCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "peers",
		Usage:     "list the nodes this node's overlay knows",
		UsageText: "macronode peers [-o table|json] [--config PATH] [--http-addr ADDR]",
		Description: "Asks the running node (GET /api/v1/peers) for its overlay's peer table: every\n" +
			"node it has met through bootstrap or gossip, with its addresses (the /p2p/<id>\n" +
			"suffix left off), whether a connection is open, the last ping round trip, when\n" +
			"it was last heard from and which planes that node reports ready. Exit 1 when\n" +
			"the node or its overlay plane does not answer.\n\n" +
			"Example:\n   macronode peers\n" +
			"   NODE                                                  ADDRS                     CONNECTED  RTT    LAST-SEEN  READY-PLANES\n" +
			"   12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo  /ip4/10.0.0.1/tcp/9101    yes        412µs  2s ago     overlay,dht\n" +
			"   1 peer, 1 connected",
		Flags: clientFlags(&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table",
			Usage: "`FORMAT`: table, or json (the API's answer)"}),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("peers takes no arguments")
			}
			format := c.String("output")
			if format != "table" && format != "json" {
				return usageErr("-o must be table or json, got %q", format)
			}
			cl, _, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			var doc admin.PeersResponse
			if err := cl.do(c.Context, "GET", "/api/v1/peers", &doc); err != nil {
				return failure(fmt.Errorf("peers: %w", err))
			}
			if format == "json" {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(doc); err != nil {
					return failure(fmt.Errorf("peers: %w", err))
				}
				return nil
			}
			if err := printPeers(env, doc.Peers, time.Now()); err != nil {
				return failure(err)
			}
			return nil
		},
	}
}

func printPeers(env Env, peers []admin.Peer, now time.Time) error {
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRS\tCONNECTED\tRTT\tLAST-SEEN\tREADY-PLANES")
	connected := 0
	for _, p := range peers {
		if p.Connected {
			connected++
		}
		addrs := make([]string, len(p.Addrs))
		for i, a := range p.Addrs {
			addrs[i] = strings.TrimSuffix(a, "/p2p/"+p.NodeID)
		}
		rtt, seen := "-", "-"
		if p.RTTMs > 0 {
			rtt = roundRTT(time.Duration(p.RTTMs * float64(time.Millisecond))).String()
		}
		if !p.LastSeen.IsZero() {
			seen = max(now.Sub(p.LastSeen), 0).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dash(p.NodeID), dash(strings.Join(addrs, ",")), yesNo(p.Connected),
			rtt, seen, dash(strings.Join(p.ReadyPlanes, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	noun := "peers"
	if len(peers) == 1 {
		noun = "peer"
	}
	_, err := fmt.Fprintf(env.Stdout, "%d %s, %d connected\n", len(peers), noun, connected)
	return err
}

// roundRTT keeps three significant digits or so: 412µs, 1.25ms, 180ms.
func roundRTT(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < 100*time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Millisecond)
	}
}

func keygenCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "keygen",
		Usage:     "write new node keys and print their node ids",
		UsageText: "macronode keygen [--out FILE] [--count N] [--k8s-secret NAME]",
		Description: "Writes ed25519 node keys (mode 0600) and prints \"<node id>  <path>\" per key,\n" +
			"never the key. A node whose data_dir holds node.key uses that key, so its id\n" +
			"(and the bootstrap multiaddrs /.../p2p/<node id> that others use to join it)\n" +
			"are known before its first start: for example to fill a Kubernetes Secret and\n" +
			"the cluster's network.bootstrap at once. Never overwrites a file: an existing\n" +
			"key is an identity, and replacing it would lose it.\n\n" +
			"With --count N (N > 1), --out names a directory (default: the current one)\n" +
			"and the keys are node-1.key ... node-N.key in it; if any of them exists,\n" +
			"nothing is written.\n\n" +
			"With --k8s-secret NAME, the N keys go into the YAML of a Kubernetes Secret\n" +
			"NAME written to --out (default ./NAME.yaml, mode 0600): data 0.key ... for\n" +
			"StatefulSet ordinals 0 ... N-1, their ids in the annotation " + NodeIDsAnnotation + ".\n\n" +
			"Examples:\n" +
			"   macronode keygen --out /var/lib/macronode/node.key\n" +
			"   macronode keygen --count 3 --out ./keys\n" +
			"   kubectl create secret generic macronode-keys --from-file=./keys\n" +
			"   macronode keygen --count 3 --k8s-secret macronode-keys --out keys.yaml",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "out", Usage: "key `FILE`, or with --count > 1 a directory (default ./node.key, or . with --count)"},
			&ucli.IntFlag{Name: "count", Value: 1, Usage: "write `N` keys"},
			&ucli.StringFlag{Name: "k8s-secret", Usage: "write the keys as the YAML of a Kubernetes Secret called `NAME` (0.key ... per StatefulSet ordinal)"},
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("keygen takes no arguments (did you mean --out %s?)", c.Args().First())
			}
			n := c.Int("count")
			if n < 1 || n > maxKeygenCount {
				return usageErr("--count must be between 1 and %d, got %d", maxKeygenCount, n)
			}
			if name := c.String("k8s-secret"); name != "" {
				out := c.String("out")
				if out == "" {
					out = name + ".yaml"
				}
				return writeKeySecret(env.Stdout, out, name, n)
			}
			paths, err := keyPaths(c.String("out"), c.IsSet("out"), n)
			if err != nil {
				return err
			}
			for _, p := range paths {
				id, err := writeNewKey(p)
				if err != nil {
					return failure(fmt.Errorf("keygen: %w", err))
				}
				fmt.Fprintf(env.Stdout, "%s  %s\n", id, p)
			}
			return nil
		},
	}
}

// keyPaths names the files keygen writes and refuses, before any is
// written, a target that exists.
func keyPaths(out string, outSet bool, n int) ([]string, error) {
	if n == 1 {
		if !outSet {
			out = "." + string(filepath.Separator) + node.NodeKeyFile
		}
		if fi, err := os.Stat(out); err == nil {
			if fi.IsDir() {
				return nil, failure(fmt.Errorf("keygen: --out %s is a directory: name a file, or use --count N for a directory of keys", out))
			}
			return nil, refuseOverwrite(out)
		}
		return []string{out}, nil
	}
	if !outSet {
		out = "."
	}
	if fi, err := os.Stat(out); err == nil && !fi.IsDir() {
		return nil, failure(fmt.Errorf("keygen: --out %s is a file: with --count it names a directory", out))
	}
	paths := make([]string, n)
	for i := range paths {
		paths[i] = filepath.Join(out, fmt.Sprintf("node-%d.key", i+1))
		if _, err := os.Lstat(paths[i]); err == nil {
			return nil, refuseOverwrite(paths[i])
		}
	}
	return paths, nil
}

func refuseOverwrite(path string) error {
	return failure(fmt.Errorf("keygen: %s exists: refusing to overwrite a key (nothing written)", path))
}

// writeNewKey writes a fresh node key to path and returns its node id.
func writeNewKey(path string) (string, error) {
	key, err := identity.Generate()
	if err != nil {
		return "", err
	}
	id, err := identity.NodeID(key)
	if err != nil {
		return "", err
	}
	if err := identity.Write(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%s exists: refusing to overwrite a key", path)
		}
		return "", err
	}
	return id.String(), nil
}
