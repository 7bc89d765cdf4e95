package ipc_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/route"
	"github.com/stretchr/testify/require"
)

// readmeOrders is the Go snippet of README.md, verbatim (one tab less
// indentation there): TestReadmeGoSnippets keeps them the same, so the
// snippet compiles, passes vet and staticcheck, and runs.
func readmeOrders(ctx context.Context, handle func(msg []byte)) error {
	// In the writing process:
	r, err := ipc.Create("orders", ipc.Config{Capacity: 1 << 20}) // /dev/shm/orders, mode 0600
	if err != nil {
		return err // fs.ErrExist if the name is taken (ringctl rm orders removes a leftover)
	}
	defer ipc.Remove("orders") // the creator removes the name when done; open rings stay usable
	defer r.Close()
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Write(ctx, []byte("buy 10")); err != nil {
		return err // ipc.ErrFull if the ring is full (counted as a drop)
	}

	// In the reading process:
	r2, err := ipc.Open("orders")
	if err != nil {
		return err
	}
	defer r2.Close()
	c, err := r2.Consumer(nil) // nil: every default (Hybrid wait, 1 s peer timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	// Read waits, but not forever: ipc.ErrPeerDead once no producer has been attached for 1 s (Wait.PeerTimeout).
	_, err = c.Read(ctx, 1, func(msg []byte) { handle(msg) }) // up to 1 message; msg is valid inside the callback only
	return err
}

// TestReadmeGoSnippets (issue 13, item 4): every Go snippet in README.md
// and docs/*.md is the body of a function in this file, and the README's
// runs, twice in a row (it leaves nothing behind).
func TestReadmeGoSnippets(t *testing.T) {
	src, err := os.ReadFile("readme_test.go")
	require.NoError(t, err)
	// The bodies of this file's functions, one tab less indentation.
	bodies := regexp.MustCompile(`(?ms)^func readme\w*\(.*?\) error \{\n(.*?)^\}\n`).FindAllStringSubmatch(string(src), -1)
	require.NotEmpty(t, bodies)
	var code []string
	for _, b := range bodies {
		code = append(code, regexp.MustCompile(`(?m)^\t`).ReplaceAllString(b[1], ""))
	}
	files, err := filepath.Glob("../docs/*.md")
	require.NoError(t, err)
	files = append(files, "../README.md")
	snippet := regexp.MustCompile("(?ms)^```go\n(.*?)^```\n")
	found := 0
	for _, f := range files {
		md, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range snippet.FindAllStringSubmatch(string(md), -1) {
			found++
			in := false
			for _, c := range code {
				in = in || c == m[1]
			}
			require.True(t, in, "%s has a Go snippet that is not the body of a readme function in ipc/readme_test.go, so it is not compiled or run:\n%s", f, m[1])
		}
	}
	require.NotZero(t, found, "README.md has a Go snippet")

	t.Setenv("SHMRING_DIR", t.TempDir())
	for run := 1; run <= 2; run++ {
		var got []string
		require.NoError(t, readmeOrders(context.Background(), func(msg []byte) { got = append(got, string(msg)) }), "run %d", run)
		require.Equal(t, []string{"buy 10"}, got)
		entries, err := os.ReadDir(os.Getenv("SHMRING_DIR"))
		require.NoError(t, err)
		require.Empty(t, entries, "run %d left files behind", run)
	}
	require.True(t, strings.HasPrefix(code[0], "// In the writing process:"))

	// docs/bridge.md's snippet, against a server that is not there: it
	// compiles, and fails as its comment says, naming the cause.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, readmeBridgeIn(ctx))
	entries, err := os.ReadDir(os.Getenv("SHMRING_DIR"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "the snippet creates its ring and leaves its removal to the caller")
	// The out direction's snippet opens that ring, and fails to connect.
	require.Error(t, readmeBridgeOut(ctx))
	require.NoError(t, ipc.Remove("orders"))
}

// readmeBridgeIn is docs/bridge.md's snippet: a ring fed from a JetStream
// stream. It is compiled, vetted and checked by staticcheck; running it needs
// a server (bridge's own tests and ExampleNewIn run one).
func readmeBridgeIn(ctx context.Context) error {
	// The ring: sequences are required (the bridge numbers every message).
	r, err := ipc.Create("orders", ipc.Config{
		Sequences: true,
		HighWater: 512 << 10, LowWater: 128 << 10, // the bridge pauses at 512 KiB, resumes at 128 KiB
	})
	if err != nil {
		return err
	}
	defer r.Close()
	b, err := bridge.NewIn(ctx, r, bridge.InConfig{
		URL:      "nats://nats.internal:4222",
		Stream:   "ORDERS",
		Consumer: "orders-to-ring", // a durable pull consumer, yours alone
	})
	if err != nil {
		return err // says what is wrong and what to do
	}
	defer b.Close()   // after Run has returned
	return b.Run(ctx) // until ctx is done, or the ring fails
}

// readmeBridgeOut is docs/bridge.md's out-direction snippet: a ring's
// messages published to a JetStream stream. Compiled, vetted and checked
// like readmeBridgeIn; bridge's own tests and ExampleNewOut run one.
func readmeBridgeOut(ctx context.Context) error {
	r, err := ipc.Open("orders") // any ring but a DropOldest one
	if err != nil {
		return err
	}
	defer r.Close()
	b, err := bridge.NewOut(ctx, r, bridge.OutConfig{
		URL:     "nats://nats.internal:4222",
		Subject: "orders.local", // a stream must capture it
		Window:  1024,           // publishes awaiting acknowledgement, at most
	})
	if err != nil {
		return err // says what is wrong and what to do
	}
	defer b.Close()   // after Run has returned
	return b.Run(ctx) // until ctx is done (nil), the ring fails, or a message can never be published
}

// readmeRoute is docs/routing.md's snippet: a router over four rings.
func readmeRoute(ctx context.Context, w0, w1, w2, w3 *ipc.Ring, msg []byte) error {
	rt, err := route.New([]*ipc.Ring{w0, w1, w2, w3}, &route.Config{By: route.LeastDepth})
	if err != nil {
		return err
	}
	defer rt.Close()
	return rt.Send(ctx, msg) // By: route.ByKey sends with rt.SendKey(ctx, key, msg)
}

// TestReadmeRoute runs readmeRoute: the message lands in one of the rings.
func TestReadmeRoute(t *testing.T) {
	var rings []*ipc.Ring
	for i := 0; i < 4; i++ {
		r, err := ipc.Create(testutil.Name(t), ipc.Config{})
		require.NoError(t, err)
		defer r.Close()
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		defer c.Close()
		rings = append(rings, r)
	}
	require.NoError(t, readmeRoute(context.Background(), rings[0], rings[1], rings[2], rings[3], []byte("job")))
	var in uint64
	for _, r := range rings {
		st, err := r.Stats()
		require.NoError(t, err)
		in += st.MsgsIn
	}
	require.EqualValues(t, 1, in)
}
