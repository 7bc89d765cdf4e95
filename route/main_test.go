package route_test

import (
	"testing"

	"github.com/shmring/shmring/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainWithChildren(m, childEnv, runChild) }

func testutilName(b testing.TB) string { return testutil.Name(b) }
