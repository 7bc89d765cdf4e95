package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/shm"
)

// runServe serves /metrics for every ring in a directory, found afresh at
// each scrape.
func runServe(sio stdio, args []string) error {
	fs := newFlags(sio, "serve")
	listen := fs.String("listen", "127.0.0.1:9808", "address to listen on")
	dir := fs.String("dir", "", "directory of rings (default $SHMRING_DIR or /dev/shm)")
	trust := fs.Bool("trust-owner", false, "export rings owned by other users")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	d, opts := dirAndTrust(*dir, *trust)
	mux := serveMux(d, opts)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(sio.out, "serving metrics of the rings in %s on http://%s/metrics\n", d, ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveMux answers /metrics, a short index at /, and 404 elsewhere.
func serveMux(dir string, opts []ipc.Option) *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewDirCollector(dir, opts...))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ringctl serve: the rings in %s\n\n"+
			"/metrics       Prometheus metrics of every ring\n"+
			"/healthz       200 if every ring has a live consumer and no pressure, else 503 (JSON)\n"+
			"/healthz/RING  the same for one ring\n", dir)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		rings, err := ops.List(dir, opts...)
		if err != nil {
			writeHealth(w, http.StatusServiceUnavailable, map[string]any{"healthy": false, "reasons": []string{err.Error()}})
			return
		}
		all := healthAll{Healthy: true, Rings: []healthReport{}}
		for _, ri := range rings {
			if ri.Err != nil {
				all.Unreadable++ // not a ring, or not ours: not this server's business
				continue
			}
			rep := healthReport{Ring: ri.Name, Reasons: unhealthyReasons(ri.Stats, nil, serveCriteria)}
			if ri.Damage != nil {
				rep.Reasons = append([]string{corruptReason(ri.Damage)}, rep.Reasons...)
			}
			rep.Healthy = len(rep.Reasons) == 0
			all.Healthy = all.Healthy && rep.Healthy
			all.Rings = append(all.Rings, rep)
		}
		code := http.StatusOK
		if !all.Healthy {
			code = http.StatusServiceUnavailable
		}
		writeHealth(w, code, all)
	})
	mux.HandleFunc("GET /healthz/{ring}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("ring")
		rep := healthReport{Ring: name}
		if !shm.IsSegmentName(name) {
			rep.Reasons = []string{"not a ring name"}
			writeHealth(w, http.StatusNotFound, rep)
			return
		}
		ring, err := ipc.Open(filepath.Join(dir, name), append(opts, ipc.WithReadOnly())...)
		if errors.Is(err, fs.ErrNotExist) {
			rep.Reasons = []string{"no such ring in " + dir}
			writeHealth(w, http.StatusNotFound, rep)
			return
		}
		var st ipc.Stats
		var damage error
		if err == nil {
			st, err = ring.Stats()
			if err == nil {
				if damage = ops.Validate(ring); damage != nil && !errors.Is(damage, ipc.ErrCorrupt) {
					err, damage = damage, nil
				}
			}
			_ = ring.Close()
		}
		if err != nil {
			rep.Reasons = []string{err.Error()}
			writeHealth(w, http.StatusServiceUnavailable, rep)
			return
		}
		rep.Reasons = unhealthyReasons(st, nil, serveCriteria)
		if damage != nil {
			rep.Reasons = append([]string{corruptReason(damage)}, rep.Reasons...)
		}
		rep.Healthy = len(rep.Reasons) == 0
		code := http.StatusOK
		if !rep.Healthy {
			code = http.StatusServiceUnavailable
		}
		writeHealth(w, code, rep)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 not found: see / for what is served", http.StatusNotFound)
	})
	return mux
}

// serveCriteria is what /healthz calls healthy: a live consumer and no
// pressure.
var serveCriteria = healthCriteria{consumerAlive: true}

// healthAll is the answer of /healthz.
type healthAll struct {
	Healthy    bool           `json:"healthy"`
	Rings      []healthReport `json:"rings"`
	Unreadable int            `json:"unreadable"` // files that are not readable rings, not counted
}

func writeHealth(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
