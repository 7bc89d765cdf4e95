package route_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/route"
)

// A router over two rings, one per worker. In real use each worker is a
// process consuming its ring; here the consumers are in the same process.
func Example() {
	dir, _ := os.MkdirTemp("", "shmring-route-example")
	defer os.RemoveAll(dir)
	var rings []*ipc.Ring
	for _, name := range []string{"worker-0", "worker-1"} {
		r, err := ipc.Create(filepath.Join(dir, name), ipc.Config{Capacity: 64 << 10})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer r.Close()
		c, _ := r.Consumer(nil) // the worker: attached, so the ring is in the rotation
		defer c.Close()
		rings = append(rings, r)
	}

	rt, err := route.New(rings, &route.Config{By: route.RoundRobin})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close()
	for _, m := range []string{"a", "b", "c", "d"} {
		if err := rt.Send(context.Background(), []byte(m)); err != nil {
			fmt.Println(err)
		}
	}
	for _, s := range rt.Stats().Rings {
		fmt.Println(filepath.Base(s.Name), s.Routed, s.Health)
	}
	// Output:
	// worker-0 2 healthy
	// worker-1 2 healthy
}

// By key: messages with the same key go to the same ring, in order (here
// each of the three keys hashes to a ring of its own).
func ExampleRouter_SendKey() {
	dir, _ := os.MkdirTemp("", "shmring-route-example")
	defer os.RemoveAll(dir)
	var rings []*ipc.Ring
	var cs []*ipc.Consumer
	for _, name := range []string{"a", "b", "c"} {
		r, _ := ipc.Create(filepath.Join(dir, name), ipc.Config{Capacity: 64 << 10})
		defer r.Close()
		c, _ := r.Consumer(nil)
		defer c.Close()
		rings, cs = append(rings, r), append(cs, c)
	}
	rt, _ := route.New(rings, &route.Config{By: route.ByKey})
	defer rt.Close()
	for i := 0; i < 3; i++ {
		for _, user := range []string{"ann", "eve", "amy"} {
			_ = rt.SendKey(context.Background(), []byte(user), []byte(fmt.Sprint(user, i)))
		}
	}
	for _, c := range cs {
		_, _ = c.TryRead(10, func(m []byte) { fmt.Print(string(m), " ") })
	}
	fmt.Println()
	// Output: ann0 ann1 ann2 eve0 eve1 eve2 amy0 amy1 amy2
}
