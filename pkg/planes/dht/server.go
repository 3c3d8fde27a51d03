// Package dht is the DHT plane of macronode: a go-libp2p-kad-dht server on
// its own libp2p host and key, under the protocol prefix /macronode (never
// the public IPFS network). It maps content addresses to the DHT peers that
// provide them, keeps announcing what the local node stores (kad-dht's
// SweepingProvider, with its keystore persisted beside the DHT's records),
// bootstraps from the peers the local overlay knows, and publishes the
// node's signed record under /mnnode/<dht peer id> so any node can map a
// provider to that node's overlay.
package dht

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/provider"
	"github.com/libp2p/go-libp2p-kad-dht/provider/keystore"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	mh "github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/identity"
)

// ProtocolPrefix keeps this DHT apart from every other kad-dht network.
const ProtocolPrefix = "/macronode"

// Datastore namespaces: kad-dht's records (providers others told us about,
// values) and the SweepingProvider's keystore and schedule state.
var (
	nsKad       = datastore.NewKey("/kad")
	nsKeystore  = datastore.NewKey("/reprovider/keys")
	nsProvState = datastore.NewKey("/reprovider/state")
)

// Server is the DHT plane: a libp2p host, kad-dht, the reprovider and the
// HTTP API. It satisfies svcrt.Service.
type Server struct {
	cfg      Config
	log      hclog.Logger
	store    datastore.Batching // the root datastore (pebble or memory)
	kadStore datastore.Batching // kad-dht's namespace of it
	stored   storedCounter
	host     host.Host
	kad      *kaddht.IpfsDHT
	keys     keystore.Keystore
	prov     *provider.SweepingProvider
	client   *http.Client
	metrics  *metrics
	nodes    *nodeCache
	peers    *overlayPeers
	mux      *httpx.Mux

	ctx    context.Context // cancelled by Close: ends the background loops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// New opens the datastore, starts the host, the DHT and the reprovider, and
// the background loops (overlay bootstrap, node record, the walk of
// storage's listing). Close undoes all of it.
func New(cfg Config, log hclog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	key, err := loadKey(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    log,
		client: &http.Client{Timeout: 10 * time.Second},
		nodes:  newNodeCache(nodeCacheSize, nodeCacheTTL),
		peers:  &overlayPeers{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.open(key); err != nil {
		s.cancel()
		return nil, errors.Join(err, s.closeStores())
	}
	if s.metrics, err = newMetrics(reg, s); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.mux = s.routes()
	s.start()
	log.Info("dht started", "peer_id", s.host.ID().String(), "addrs", fmt.Sprint(s.host.Addrs()),
		"amnesia", cfg.Amnesia, "reprovide_interval", cfg.ReprovideInterval.String())
	return s, nil
}

// open builds the stores, the host, kad-dht and the reprovider in order;
// on failure the caller runs closeStores, which closes whatever exists.
func (s *Server) open(key crypto.PrivKey) error {
	var err error
	if s.store, err = openDatastore(s.cfg); err != nil {
		return err
	}
	s.kadStore = namespace.Wrap(s.store, nsKad)
	if s.host, err = newHost(key, s.cfg.P2PListen, s.cfg.Announce); err != nil {
		return err
	}
	s.kad, err = kaddht.New(s.host,
		kaddht.Mode(kaddht.ModeServer),
		kaddht.ProtocolPrefix(ProtocolPrefix),
		kaddht.Datastore(s.kadStore),
		kaddht.Validator(record.NamespacedValidator{
			"pk":               record.PublicKeyValidator{},
			identity.Namespace: recordValidator(),
		}),
		kaddht.RoutingTableRefreshPeriod(s.cfg.RefreshPeriod),
		kaddht.BootstrapPeersFunc(s.peers.addrInfos),
	)
	if err != nil {
		return fmt.Errorf("start kad-dht: %w", err)
	}
	if s.keys, err = keystore.NewKeystore(namespace.Wrap(s.store, nsKeystore)); err != nil {
		return fmt.Errorf("open reprovider keystore: %w", err)
	}
	kad := s.kad
	s.prov, err = provider.New(
		provider.WithHost(s.host),
		provider.WithReplicationFactor(kad.BucketSize()),
		provider.WithSelfAddrs(kad.FilteredAddrs),
		provider.WithRouter(kad),
		provider.WithMessageSender(kad.MessageSender()),
		provider.WithAddLocalRecord(func(ctx context.Context, h mh.Multihash) error {
			return kad.Provide(ctx, cid.NewCidV1(cid.Raw, h), false)
		}),
		provider.WithReprovideInterval(s.cfg.ReprovideInterval),
		provider.WithKeystore(s.keys),
		provider.WithDatastore(namespace.Wrap(s.store, nsProvState)),
	)
	if err != nil {
		return fmt.Errorf("start reprovider: %w", err)
	}
	return nil
}

// openDatastore opens pebble under the data dir, or a map under amnesia.
func openDatastore(cfg Config) (datastore.Batching, error) {
	if cfg.Amnesia {
		return dssync.MutexWrap(datastore.NewMapDatastore()), nil
	}
	dir := filepath.Join(cfg.DataDir, DatastoreDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create datastore dir: %w", err)
	}
	d, err := pebbleds.NewDatastore(dir)
	if err != nil {
		return nil, fmt.Errorf("open datastore %s: %w", dir, err)
	}
	return d, nil
}

// start launches the background loops; Close waits for them.
func (s *Server) start() {
	loops := []func(context.Context){s.bootstrapLoop, s.recordLoop, s.provideStored}
	for _, loop := range loops {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			loop(s.ctx)
		}()
	}
}

// Handler serves the plane API.
func (s *Server) Handler() http.Handler { return s.mux }

// Ready reports whether the host listens. A lone node with an empty
// routing table is ready: zero peers shows in /dht/info and the metrics.
func (s *Server) Ready() error {
	if len(s.host.Network().ListenAddresses()) == 0 {
		return errors.New("dht host is not listening")
	}
	return nil
}

// PeerID returns the DHT host's peer id.
func (s *Server) PeerID() string { return s.host.ID().String() }

// Close stops the loops, then the reprovider (which persists its queue),
// kad-dht (which flushes buffered provider records), the host and the
// datastore, in that order.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.closeErr = s.closeStores()
	})
	return s.closeErr
}

func (s *Server) closeStores() error {
	var errs []error
	if s.prov != nil {
		errs = append(errs, wrapErr("close reprovider", s.prov.Close()))
	}
	if s.keys != nil {
		errs = append(errs, wrapErr("close keystore", s.keys.Close()))
	}
	if s.kad != nil {
		errs = append(errs, wrapErr("close kad-dht", s.kad.Close()))
	}
	if s.host != nil {
		errs = append(errs, wrapErr("close host", s.host.Close()))
	}
	if s.store != nil {
		errs = append(errs, wrapErr("close datastore", s.store.Close()))
	}
	return errors.Join(errs...)
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
