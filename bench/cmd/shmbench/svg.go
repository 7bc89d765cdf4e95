package main

import (
	"os"

	"gonum.org/v1/plot/vg/vgsvg"
)

func writeSVG(path string, img *vgsvg.Canvas) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
