package ring_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/internal/testutil"
)

// childEnv makes the test binary, re-executed, run as a child process of a
// cross-process test (os/exec's helperCommand pattern).
const childEnv = "SHMRING_RING_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		proc.DieWithParent()
		if err := runChild(role); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	testutil.Main(m)
}

func runChild(role string) error {
	switch role {
	case "seq-kill":
		return seqKillChild()
	}
	return fmt.Errorf("unknown child role %q", role)
}
