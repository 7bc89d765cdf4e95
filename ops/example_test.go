package ops_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/route"
)

// exampleRing makes a ring with two messages waiting, in a directory of its
// own that cleanup removes.
func exampleRing(cfg ipc.Config) (r *ipc.Ring, dir string, cleanup func()) {
	dir, _ = os.MkdirTemp("", "shmring-example")
	r, err := ipc.Create(filepath.Join(dir, "orders"), cfg)
	if err != nil {
		panic(err)
	}
	p, _ := r.Producer(nil)
	_ = p.Write(context.Background(), []byte("buy 10"))
	_ = p.Write(context.Background(), []byte("sell 5"))
	_ = p.Close()
	return r, dir, func() { _ = r.Close(); _ = os.RemoveAll(dir) }
}

// An operator checks a ring, opened read-only as one should to look.
func ExampleDoctor() {
	r, _, cleanup := exampleRing(ipc.Config{Capacity: 4096})
	defer cleanup()
	ro, err := ipc.Open(r.Path(), ipc.WithReadOnly())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ro.Close()

	d, err := ops.Doctor(ro, false)
	switch {
	case errors.Is(err, ops.ErrFault):
		fmt.Println("unreadable: recreate it:", err)
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println("healthy:", d.Healthy(), "pending:", d.Pending)
	}
	// Output: healthy: true pending: 2
}

// Peek copies the waiting messages out without consuming them.
func ExamplePeek() {
	r, _, cleanup := exampleRing(ipc.Config{Capacity: 4096, Sequences: true})
	defer cleanup()
	recs, err := ops.Peek(r, 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, rec := range recs {
		fmt.Printf("#%d %s\n", rec.Seq, rec.Data)
	}
	// Output:
	// #1 buy 10
	// #2 sell 5
}

// List reads every ring of a directory, and says why a file is not one.
func ExampleList() {
	_, dir, cleanup := exampleRing(ipc.Config{Capacity: 4096})
	defer cleanup()
	_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a ring"), 0o600)
	list, err := ops.List(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range list {
		if e.Err != nil {
			fmt.Println(e.Name, "corrupt:", errors.Is(e.Err, ipc.ErrCorrupt))
			continue
		}
		fmt.Println(e.Name, e.Stats.Kind, e.Stats.MsgsIn, "messages in")
	}
	// Output:
	// notes.txt corrupt: true
	// orders spsc 2 messages in
}

// An operator makes every producer of a ring drop rather than wait
// (ringctl policy orders --producers drop), then lifts the override.
func ExampleSetPolicy() {
	r, _, cleanup := exampleRing(ipc.Config{Capacity: 4096})
	defer cleanup()
	drop, err := ops.ParsePolicy("drop")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := ops.SetPolicy(r, drop, 0); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := r.Stats()
	fmt.Printf("producers %q, consumer %q\n", st.ProducerOverride, st.ConsumerOverride)
	_ = ops.SetPolicy(r, 0, 0)
	st, _ = r.Stats()
	fmt.Printf("producers %q\n", st.ProducerOverride)

	_, err = ops.ParsePolicy("sleep")
	fmt.Println(errors.Is(err, ops.ErrInvalidPolicy))
	// Output:
	// producers "drop", consumer ""
	// producers ""
	// true
}

// A router (package route, here in the same process; usually another)
// counts its routing in each ring's segment, where any process reads it.
func ExampleRouting() {
	r, _, cleanup := exampleRing(ipc.Config{Capacity: 4096})
	defer cleanup()
	c, _ := r.Consumer(nil) // a consumer attached: the ring is in the rotation
	defer c.Close()
	rt, err := route.New([]*ipc.Ring{r}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = rt.Send(context.Background(), []byte("buy 1"))
	_ = rt.Close() // flushes what the sampler has not yet

	ro, err := ipc.Open(r.Path(), ipc.WithReadOnly())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ro.Close()
	rc, err := ops.Routing(ro)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("routed:", rc.Routed, "spilled:", rc.Spilled, "skipped:", rc.Skipped)
	// Output: routed: 1 spilled: 0 skipped: 0
}
