package waitset_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
)

// One goroutine consumes three rings. In real use each ring has producers
// in other processes; here one process writes, for brevity.
func Example() {
	dir, _ := os.MkdirTemp("", "shmring-waitset-example")
	defer os.RemoveAll(dir)

	s, err := waitset.New(&waitset.Config{Budget: 2}) // at most 2 messages from a ring per turn
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for _, name := range []string{"app-a", "app-b", "app-c"} {
		r, err := ipc.Create(filepath.Join(dir, name), ipc.Config{Capacity: 4 << 10})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer r.Close() // after the set's Close (deferred later, run earlier)
		p, _ := r.Producer(nil)
		defer p.Close()
		for i := range 3 {
			_ = p.Write(ctx, fmt.Appendf(nil, "%s #%d", name, i))
		}
		if _, err := s.Join(r); err != nil {
			fmt.Println(err)
			return
		}
	}
	defer s.Close()

	for got := 0; got < 9; {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := s.Read(rctx, 9, func(m *waitset.Member, msg []byte) {
			fmt.Printf("%s: %s\n", m.Name(), msg) // msg is valid until this returns
		})
		cancel()
		var me *waitset.MemberError
		if errors.As(err, &me) {
			fmt.Println(err) // a ring's producers gone, or the ring closed or damaged
		} else if err != nil {
			fmt.Println(err)
			return
		}
		got += n
	}
	// Output:
	// app-a: app-a #0
	// app-a: app-a #1
	// app-b: app-b #0
	// app-b: app-b #1
	// app-c: app-c #0
	// app-c: app-c #1
	// app-a: app-a #2
	// app-b: app-b #2
	// app-c: app-c #2
}
