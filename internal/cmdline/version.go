package cmdline

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// PrintVersion writes program's version, the Go version and the module
// build information; verbose adds every dependency and build setting.
func PrintVersion(w io.Writer, program, version string, verbose bool) {
	fmt.Fprintf(w, "%s %s\n", program, version)
	fmt.Fprintf(w, "go     %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	fmt.Fprintf(w, "module %s %s\n", bi.Main.Path, bi.Main.Version)
	for _, s := range bi.Settings {
		switch {
		case verbose:
			fmt.Fprintf(w, "build  %s=%s\n", s.Key, s.Value)
		case s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified":
			fmt.Fprintf(w, "%-6s %s\n", strings.TrimPrefix(s.Key, "vcs."), s.Value)
		}
	}
	if verbose {
		for _, d := range bi.Deps {
			fmt.Fprintf(w, "dep    %s %s\n", d.Path, d.Version)
		}
	}
}

// VersionCommand is the version command of program: PrintVersion to stdout,
// with a --verbose flag.
func VersionCommand(program, version string, stdout io.Writer) *Command {
	cmd := NewCommand(program, "version", "print the version, the Go version and the module build information", "")
	verbose := cmd.Flags.Bool("verbose", false, "also list every dependency module and the build settings")
	cmd.Run = func(context.Context) error {
		PrintVersion(stdout, program, version, *verbose)
		return nil
	}
	return cmd
}
