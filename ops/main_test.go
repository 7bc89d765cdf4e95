package ops_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
)

// childEnv makes this test binary a child process of a cross-process
// test; its value is the child's role.
const childEnv = "OPS_TEST_CHILD"

func TestMain(m *testing.M) {
	testutil.MainWithChildren(m, childEnv, func(role string) error {
		switch role {
		case "claim":
			return claimChild(os.Getenv("OPS_T_PATH"))
		case "hang-create":
			return testutil.HangInCreate(os.Getenv("OPS_T_PATH"))
		case "hole-punch":
			return holePunchChild()
		}
		return fmt.Errorf("unknown child role %q", role)
	})
}

// claimChild claims a record in MPSC slot 0 of the ring at path, says
// "claimed" and waits to be killed: a producer that dies with a
// reservation in flight.
func claimChild(path string) error {
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	p, err := r.Producer(&ipc.ProducerConfig{ID: 1})
	if err != nil {
		return err
	}
	b, err := p.Claim(context.Background(), 10)
	if err != nil {
		return err
	}
	copy(b, "held-claim")
	if _, err := os.Stdout.WriteString("claimed\n"); err != nil {
		return err
	}
	select {}
}
