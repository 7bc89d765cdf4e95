//go:build !amd64

package spin

// Pause is a no-op on architectures without a pause hint wired up here.
func Pause() {}
