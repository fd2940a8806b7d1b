package sous

import (
	"errors"
	"fmt"
)

// Error is why a reconcile could not produce a desired state.
type Error struct {
	// Transient is true for something temporary (the host retries with
	// backoff), false when the parent is wrong (the host waits for it to change).
	Transient bool
	// Message is the human-readable reason.
	Message string
}

// Invalid reports that the parent is wrong (a bad spec value, say).
func Invalid(format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}

// Transient reports that something temporary went wrong; retry later.
func Transient(format string, args ...any) *Error {
	return &Error{Transient: true, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Transient {
		return "transient: " + e.Message
	}
	return "invalid: " + e.Message
}

// asError finds the *Error in err's chain, or makes err transient.
func asError(err error) *Error {
	var sousError *Error
	if errors.As(err, &sousError) {
		return sousError
	}
	return &Error{Transient: true, Message: err.Error()}
}
