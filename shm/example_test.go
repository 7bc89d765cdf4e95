package shm_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/shmring/shmring/shm"
)

func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "shm-example")
	defer os.RemoveAll(dir)
	seg, err := shm.Create("demo", 4096, func(body []byte) error {
		copy(body, "hello")
		return nil
	}, shm.Dir(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer seg.Close()

	other, _ := shm.Open(filepath.Join(dir, "demo"))
	defer other.Close()
	fmt.Println(string(other.Body()[:5]), len(other.Body()))
	// Output: hello 4096
}
