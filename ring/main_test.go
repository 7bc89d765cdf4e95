package ring_test

import (
	"fmt"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
)

// childEnv makes the test binary, re-executed, run as a child process of a
// cross-process test (os/exec's helperCommand pattern).
const childEnv = "SHMRING_RING_TEST_CHILD"

func TestMain(m *testing.M) { testutil.MainWithChildren(m, childEnv, runChild) }

func runChild(role string) error {
	switch role {
	case "seq-kill":
		return seqKillChild()
	}
	return fmt.Errorf("unknown child role %q", role)
}
