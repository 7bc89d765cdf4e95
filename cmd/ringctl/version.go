package main

import (
	"fmt"
	"runtime/debug"
)

// runVersion prints the module version and the VCS revision the binary
// was built from, as the Go toolchain recorded them.
func runVersion(sio stdio, args []string) int {
	if len(args) > 0 && args[0] != "--help" && args[0] != "-h" {
		fmt.Fprintf(sio.err, "ringctl version: takes no arguments, got %q (see `ringctl --help`)\n", args)
		return exitUsage
	}
	if len(args) > 0 {
		fmt.Fprintln(sio.out, "usage: ringctl version\n\nprint the module version and VCS revision.")
		return 0
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(sio.out, "ringctl: no build information (built without module support)")
		return 0
	}
	fmt.Fprint(sio.out, formatVersion(bi))
	return 0
}

// formatVersion renders build information: module and version, then the
// revision, its time and whether the tree was modified, then the Go version.
func formatVersion(bi *debug.BuildInfo) string {
	path, version := bi.Main.Path, bi.Main.Version
	if path == "" {
		path = "github.com/shmring/shmring"
	}
	if version == "" {
		version = "(unknown)"
	}
	var rev, when, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	out := fmt.Sprintf("ringctl %s %s\n", path, version)
	switch {
	case rev == "":
		out += "revision unknown (built without VCS information)\n"
	default:
		out += "revision " + rev
		if when != "" {
			out += " " + when
		}
		if modified == "true" {
			out += " (modified)"
		}
		out += "\n"
	}
	return out + "go " + bi.GoVersion + "\n"
}
