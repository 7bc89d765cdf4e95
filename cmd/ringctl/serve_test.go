package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// get fetches path from h and returns the status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, string(b)
}

// TestServePaths (issue 13, item 10): / is a short index, unknown paths
// answer 404, /metrics has the per-cause pressure and the ring info.
func TestServePaths(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "x", "--size", "4KiB", "--dir", dir).code)
	mux := serveMux(dir, nil)
	code, body := get(t, mux, "/")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ringctl serve: the rings in "+dir+"\n\n"+
		"/metrics       Prometheus metrics of every ring\n"+
		"/healthz       200 if every ring has a live consumer and no pressure, else 503 (JSON)\n"+
		"/healthz/RING  the same for one ring\n", body)
	for _, path := range []string{"/nope", "/metrics/x", "/favicon.ico"} {
		code, body = get(t, mux, path)
		require.Equal(t, http.StatusNotFound, code, path)
		require.Equal(t, "404 not found: see / for what is served\n", body, path)
	}
	code, body = get(t, mux, "/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `shmring_pressure{cause="depth",ring="x"} 0`)
	require.Contains(t, body, `shmring_ring_info{drop_oldest="false",header_commit="false",kind="spsc",max_message_bytes="512",ring="x",sequences="false",slots="0",timestamps="false"} 1`)
}
