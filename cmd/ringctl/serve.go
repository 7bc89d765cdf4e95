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
	reg := prometheus.NewRegistry()
	reg.MustRegister(ipc.NewDirCollector(d, opts...))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "shmring metrics for the rings in %s: /metrics\n", d)
	})
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
