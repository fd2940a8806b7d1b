//go:build !wasm

package sous

import (
	"fmt"
	"os"
)

var levelNames = [...]string{"trace", "debug", "info", "warn", "error"}

func hostLog(level Level, message string) {
	name := "level?"
	if level >= 0 && int(level) < len(levelNames) {
		name = levelNames[level]
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, message)
}
