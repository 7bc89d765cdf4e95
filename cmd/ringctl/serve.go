package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shmring/shmring/ipc"
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
	reg.MustRegister(ipc.NewDirCollector(dir, opts...))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ringctl serve: the rings in %s\n\n/metrics  Prometheus metrics of every ring\n", dir)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 not found: see / for what is served", http.StatusNotFound)
	})
	return mux
}
