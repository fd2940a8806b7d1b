package sous

import "fmt"

// Level is the severity of a log record.
type Level int32

// The levels, in the order of the WIT enum.
const (
	LevelTrace Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

// Log writes one record into the host's logs, tagged with the reconciler's
// and the parent's names. Outside WebAssembly (native tests) it writes to
// stderr.
func Log(level Level, message string) { hostLog(level, message) }

// Debugf logs detail useful while developing a reconciler.
func Debugf(format string, args ...any) { Log(LevelDebug, fmt.Sprintf(format, args...)) }

// Infof logs normal operation.
func Infof(format string, args ...any) { Log(LevelInfo, fmt.Sprintf(format, args...)) }

// Warnf logs something unexpected that the reconciler recovered from.
func Warnf(format string, args ...any) { Log(LevelWarn, fmt.Sprintf(format, args...)) }

// ErrorLogf logs something that failed (named so, since Errorf means
// "make an error" in Go).
func ErrorLogf(format string, args ...any) { Log(LevelError, fmt.Sprintf(format, args...)) }
