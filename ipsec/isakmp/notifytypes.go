package isakmp

import "fmt"

// NotifyType is the Notify Message Type of a Notification payload. Values below
// 8192 are errors (RFC 2408 §3.14.1), 16384 and up are status messages.
type NotifyType uint16

// Error types, RFC 2408 §3.14.1.
const (
	NotifyInvalidPayloadType      NotifyType = 1
	NotifyDOINotSupported         NotifyType = 2
	NotifySituationNotSupported   NotifyType = 3
	NotifyInvalidCookie           NotifyType = 4
	NotifyInvalidMajorVersion     NotifyType = 5
	NotifyInvalidMinorVersion     NotifyType = 6
	NotifyInvalidExchangeType     NotifyType = 7
	NotifyInvalidFlags            NotifyType = 8
	NotifyInvalidMessageID        NotifyType = 9
	NotifyInvalidProtocolID       NotifyType = 10
	NotifyInvalidSPI              NotifyType = 11
	NotifyInvalidTransformID      NotifyType = 12
	NotifyAttributesNotSupported  NotifyType = 13
	NotifyNoProposalChosen        NotifyType = 14
	NotifyBadProposalSyntax       NotifyType = 15
	NotifyPayloadMalformed        NotifyType = 16
	NotifyInvalidKeyInformation   NotifyType = 17
	NotifyInvalidIDInformation    NotifyType = 18
	NotifyInvalidCertEncoding     NotifyType = 19
	NotifyInvalidCertificate      NotifyType = 20
	NotifyCertTypeUnsupported     NotifyType = 21
	NotifyInvalidCertAuthority    NotifyType = 22
	NotifyInvalidHashInformation  NotifyType = 23
	NotifyAuthenticationFailed    NotifyType = 24
	NotifyInvalidSignature        NotifyType = 25
	NotifyAddressNotification     NotifyType = 26
	NotifySALifetime              NotifyType = 27
	NotifyCertificateUnavailable  NotifyType = 28
	NotifyUnsupportedExchangeType NotifyType = 29
	NotifyUnequalPayloadLengths   NotifyType = 30
)

// Status types.
const (
	NotifyConnected         NotifyType = 16384 // RFC 2408
	NotifyResponderLifetime NotifyType = 24576 // RFC 2407 §4.6.3.1
	NotifyReplayStatus      NotifyType = 24577 // RFC 2407 §4.6.3.2
	NotifyInitialContact    NotifyType = 24578 // RFC 2407 §4.6.3.3
	NotifyRUThere           NotifyType = 36136 // RFC 3706 §5
	NotifyRUThereAck        NotifyType = 36137 // RFC 3706 §5
)

var notifyNames = map[NotifyType]string{
	NotifyInvalidPayloadType:      "INVALID-PAYLOAD-TYPE",
	NotifyDOINotSupported:         "DOI-NOT-SUPPORTED",
	NotifySituationNotSupported:   "SITUATION-NOT-SUPPORTED",
	NotifyInvalidCookie:           "INVALID-COOKIE",
	NotifyInvalidMajorVersion:     "INVALID-MAJOR-VERSION",
	NotifyInvalidMinorVersion:     "INVALID-MINOR-VERSION",
	NotifyInvalidExchangeType:     "INVALID-EXCHANGE-TYPE",
	NotifyInvalidFlags:            "INVALID-FLAGS",
	NotifyInvalidMessageID:        "INVALID-MESSAGE-ID",
	NotifyInvalidProtocolID:       "INVALID-PROTOCOL-ID",
	NotifyInvalidSPI:              "INVALID-SPI",
	NotifyInvalidTransformID:      "INVALID-TRANSFORM-ID",
	NotifyAttributesNotSupported:  "ATTRIBUTES-NOT-SUPPORTED",
	NotifyNoProposalChosen:        "NO-PROPOSAL-CHOSEN",
	NotifyBadProposalSyntax:       "BAD-PROPOSAL-SYNTAX",
	NotifyPayloadMalformed:        "PAYLOAD-MALFORMED",
	NotifyInvalidKeyInformation:   "INVALID-KEY-INFORMATION",
	NotifyInvalidIDInformation:    "INVALID-ID-INFORMATION",
	NotifyInvalidCertEncoding:     "INVALID-CERT-ENCODING",
	NotifyInvalidCertificate:      "INVALID-CERTIFICATE",
	NotifyCertTypeUnsupported:     "CERT-TYPE-UNSUPPORTED",
	NotifyInvalidCertAuthority:    "INVALID-CERT-AUTHORITY",
	NotifyInvalidHashInformation:  "INVALID-HASH-INFORMATION",
	NotifyAuthenticationFailed:    "AUTHENTICATION-FAILED",
	NotifyInvalidSignature:        "INVALID-SIGNATURE",
	NotifyAddressNotification:     "ADDRESS-NOTIFICATION",
	NotifySALifetime:              "NOTIFY-SA-LIFETIME",
	NotifyCertificateUnavailable:  "CERTIFICATE-UNAVAILABLE",
	NotifyUnsupportedExchangeType: "UNSUPPORTED-EXCHANGE-TYPE",
	NotifyUnequalPayloadLengths:   "UNEQUAL-PAYLOAD-LENGTHS",
	NotifyConnected:               "CONNECTED",
	NotifyResponderLifetime:       "RESPONDER-LIFETIME",
	NotifyReplayStatus:            "REPLAY-STATUS",
	NotifyInitialContact:          "INITIAL-CONTACT",
	NotifyRUThere:                 "R-U-THERE",
	NotifyRUThereAck:              "R-U-THERE-ACK",
	40501:                         "UNITY-LOAD-BALANCE",
	40502:                         "UNITY-UNKNOWN",
	40503:                         "UNITY-GROUP-HASH",
}

// String returns the name Wireshark prints for the notify type, including its
// range names for unassigned values (packet-isakmp.c, notifmsg_v1_type).
func (n NotifyType) String() string {
	if s, ok := notifyNames[n]; ok {
		return s
	}
	switch {
	case n == 0:
		return "<UNKNOWN>"
	case n <= 8191:
		return fmt.Sprintf("RESERVED (Future Use) (%d)", uint16(n))
	case n <= 16383:
		return fmt.Sprintf("Private Use (%d)", uint16(n))
	case n <= 24575:
		return fmt.Sprintf("RESERVED (Future Use) (%d)", uint16(n))
	case n <= 32767:
		return fmt.Sprintf("DOI-specific codes (%d)", uint16(n))
	case n <= 40959:
		return fmt.Sprintf("Private Use (%d)", uint16(n))
	}
	return fmt.Sprintf("RESERVED (Future Use) (%d)", uint16(n))
}

// IsError reports whether n is in the error range (1..16383, RFC 2408
// §3.14.1); the rest are status notifications.
func (n NotifyType) IsError() bool { return n > 0 && n < 16384 }
