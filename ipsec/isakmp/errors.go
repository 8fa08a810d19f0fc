package isakmp

import (
	"errors"
	"fmt"
)

// Error is a decoding failure. It says which notification RFC 2408 §5 tells the
// receiver to answer with (or to log, when answering is not appropriate, for
// example before an ISAKMP SA exists), which payload was being read and where.
//
// Use errors.As to reach it:
//
//	var perr *isakmp.Error
//	if errors.As(err, &perr) { notify(perr.Notify) }
type Error struct {
	Notify  NotifyType  // the notification the exchange layer should send
	Payload PayloadType // the payload being decoded; PayloadNone for the header
	Offset  int         // offset of that structure from the start of the message
	Reason  string
}

func (e *Error) Error() string {
	where := "header"
	if e.Payload != PayloadNone {
		where = e.Payload.Abbrev() + " payload"
	}
	return fmt.Sprintf("isakmp: %s: %s at offset %d: %s", e.Notify, where, e.Offset, e.Reason)
}

func newError(n NotifyType, p PayloadType, off int, format string, args ...any) *Error {
	return &Error{Notify: n, Payload: p, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

func malformed(p PayloadType, off int, format string, args ...any) *Error {
	return newError(NotifyPayloadMalformed, p, off, format, args...)
}

// NotifyFor returns the notification to answer a decoding error with:
// err's own when it is (or wraps) an *Error, PAYLOAD-MALFORMED otherwise.
func NotifyFor(err error) NotifyType {
	var e *Error
	if errors.As(err, &e) {
		return e.Notify
	}
	return NotifyPayloadMalformed
}

// ErrEncode reports a message that cannot be put on the wire (a length field
// would overflow, a TV attribute does not hold exactly two bytes, ...).
var ErrEncode = errors.New("isakmp: cannot encode")

func encodeError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEncode, fmt.Sprintf(format, args...))
}
