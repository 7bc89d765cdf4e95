package bridge

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSubjectsOverlap: the check behind NewIn's refusal of a
// CreateConsumer Subject that the stream never captures.
func TestSubjectsOverlap(t *testing.T) {
	for _, tc := range []struct {
		filter   string
		subjects []string
		want     bool
	}{
		{"ORD.new", []string{"ORD.>"}, true},
		{"ORD.new", []string{"ORD.new"}, true},
		{"ORD.*", []string{"ORD.new"}, true},
		{"*.x", []string{"OTHER.*"}, true},
		{">", []string{"A"}, true},
		{"ORD", []string{"ORD.>"}, false},
		{"ELSE.x", []string{"ORD.>", "OTHER.*"}, false},
		{"OTHER.a.b", []string{"OTHER.*"}, false},
		{"a.b", []string{"a"}, false},
		{"x.*", []string{"y.>", "x.z"}, true},
	} {
		require.Equal(t, tc.want, subjectsOverlap(tc.filter, tc.subjects), "%s in %v", tc.filter, tc.subjects)
	}
}
