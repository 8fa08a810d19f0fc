package isakmp

import (
	"crypto/aes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// validSABody is DOI IPsec, SIT_IDENTITY_ONLY, one ISAKMP proposal with one
// KEY_IKE transform holding one TV attribute. In a message the SA payload's
// generic header is at 28, its body at 32, the proposal at 40, the transform
// at 48 and the attributes at 56.
const validSABody = "00000001 00000001" + " 00000014 01010001" + " 0000000c 01010000 80010001"

// message builds a message from a header template and raw payload bytes,
// filling in the header's Next Payload and Length.
func message(t *testing.T, first PayloadType, payloads string) []byte {
	t.Helper()
	body := unhex(t, payloads)
	b := make([]byte, HeaderLen, HeaderLen+len(body))
	copy(b, "initiatorcookie!")
	b[16], b[17], b[18] = byte(first), Version, byte(ExchangeMainMode)
	binary.BigEndian.PutUint32(b[24:], uint32(HeaderLen+len(body)))
	return append(b, body...)
}

func payloadHex(t *testing.T, next PayloadType, body string) string {
	t.Helper()
	b := unhex(t, body)
	h := []byte{byte(next), 0, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(len(b)+4))
	return string(hexOf(h)) + body
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestMalformedMessages(t *testing.T) {
	valid := message(t, PayloadKE, payloadHex(t, PayloadNone, "aabbccdd"))
	with := func(mutate func(b []byte) []byte) []byte {
		return mutate(append([]byte(nil), valid...))
	}
	sa := func(body string) []byte { return message(t, PayloadSA, payloadHex(t, PayloadNone, body)) }
	one := func(pt PayloadType, body string) []byte { return message(t, pt, payloadHex(t, PayloadNone, body)) }

	cases := []struct {
		name    string
		msg     []byte
		notify  NotifyType
		payload PayloadType
		offset  int
	}{
		{"shorter than a header", valid[:HeaderLen-1], NotifyPayloadMalformed, PayloadNone, 0},
		{"major version 2 (IKEv2)", with(func(b []byte) []byte { b[17] = 0x20; return b }), NotifyInvalidMajorVersion, PayloadNone, 17},
		{"minor version 1", with(func(b []byte) []byte { b[17] = 0x11; return b }), NotifyInvalidMinorVersion, PayloadNone, 17},
		{"header length beyond the datagram", with(func(b []byte) []byte { b[27]++; return b }), NotifyUnequalPayloadLengths, PayloadNone, 24},
		{"datagram beyond the header length", with(func(b []byte) []byte { return append(b, 0) }), NotifyUnequalPayloadLengths, PayloadNone, 24},
		{"truncated generic header", message(t, PayloadKE, "0000"), NotifyPayloadMalformed, PayloadKE, 28},
		{"payload length shorter than the generic header", message(t, PayloadKE, "00000003"), NotifyPayloadMalformed, PayloadKE, 28},
		{"payload length overruns the message", message(t, PayloadKE, "00000064 aabbccdd"), NotifyPayloadMalformed, PayloadKE, 28},
		{"second payload overruns the message", message(t, PayloadKE, payloadHex(t, PayloadNonce, "aabb")+"00000020 0102"), NotifyPayloadMalformed, PayloadNonce, 34},
		{"bytes after the last payload", message(t, PayloadKE, payloadHex(t, PayloadNone, "aabb")+"00000000"), NotifyPayloadMalformed, PayloadNone, 34},
		{"proposal outside an SA", one(PayloadProposal, validSABody[18:]), NotifyInvalidPayloadType, PayloadProposal, 28},
		{"transform outside an SA", one(PayloadTransform, "01010000"), NotifyInvalidPayloadType, PayloadTransform, 28},
		{"unknown payload marked critical", message(t, 99, "00800008 01020304"), NotifyInvalidPayloadType, 99, 28},

		{"SA shorter than DOI and situation", one(PayloadSA, "00000001 000000"), NotifyPayloadMalformed, PayloadSA, 28},
		{"ID shorter than its fixed part", one(PayloadID, "010000"), NotifyPayloadMalformed, PayloadID, 28},
		{"CERT without an encoding", one(PayloadCert, ""), NotifyPayloadMalformed, PayloadCert, 28},
		{"CR without an encoding", one(PayloadCertRequest, ""), NotifyPayloadMalformed, PayloadCertRequest, 28},
		{"Notify shorter than its fixed part", one(PayloadNotify, "00000001 030000"), NotifyPayloadMalformed, PayloadNotify, 28},
		{"Delete shorter than its fixed part", one(PayloadDelete, "00000001 030400"), NotifyPayloadMalformed, PayloadDelete, 28},
		{"Attribute payload shorter than its fixed part", one(PayloadAttributes, "010000"), NotifyPayloadMalformed, PayloadAttributes, 28},
		{"NAT-OA shorter than its fixed part", one(PayloadNATOA, "010000"), NotifyPayloadMalformed, PayloadNATOA, 28},
		{"fragment shorter than its fixed part", one(PayloadFragment, "000101"), NotifyPayloadMalformed, PayloadFragment, 28},

		{"IPv4 ID of 5 bytes", one(PayloadID, "01000000 0102030405"), NotifyInvalidIDInformation, PayloadID, 28},
		{"IPv6 subnet ID of 16 bytes", one(PayloadID, "06000000 20010db8000000000000000000000000"), NotifyInvalidIDInformation, PayloadID, 28},
		{"Notify SPI overruns the payload", one(PayloadNotify, "00000001 03 10 000b 01020304"), NotifyPayloadMalformed, PayloadNotify, 28},
		{"Delete SPIs do not fill the payload", one(PayloadDelete, "00000001 03 04 0002 01020304"), NotifyPayloadMalformed, PayloadDelete, 28},
		{"Delete with SPIs of size 0", one(PayloadDelete, "00000001 03 00 0005"), NotifyInvalidSPI, PayloadDelete, 28},
		{"NAT-OA IPv4 with 16 address bytes", one(PayloadNATOA, "01000000 20010db8000000000000000000000001"), NotifyPayloadMalformed, PayloadNATOA, 28},
		{"Attribute payload TLV overruns", one(PayloadAttributes, "01000001 00010008 aa"), NotifyPayloadMalformed, PayloadAttributes, 36},

		{"labeled situation", sa("00000001 00000002" + validSABody[18:]), NotifySituationNotSupported, PayloadSA, 28},
		{"SA without a proposal", sa("00000001 00000001"), NotifyPayloadMalformed, PayloadProposal, 40},
		{"proposal shorter than its SPI", sa("00000001 00000001 00000008 01010400"), NotifyPayloadMalformed, PayloadProposal, 40},
		{"proposal overruns the SA", sa("00000001 00000001 000000c8 01010001 0000000c 01010000 80010001"), NotifyPayloadMalformed, PayloadProposal, 40},
		{"proposal announces 2 transforms, holds 1", sa("00000001 00000001 00000014 01010002 0000000c 01010000 80010001"), NotifyBadProposalSyntax, PayloadProposal, 40},
		{"transform overruns the proposal", sa("00000001 00000001 00000014 01010001 00000064 01010000 80010001"), NotifyPayloadMalformed, PayloadTransform, 48},
		{"transform shorter than its fixed part", sa("00000001 00000001 00000014 01010001 00000004 01010000 80010001"), NotifyPayloadMalformed, PayloadTransform, 48},
		{"bytes after the last transform", sa("00000001 00000001 00000018 01010001 0000000c 01010000 80010001 00000000"), NotifyPayloadMalformed, PayloadProposal, 60},
		{"bytes after the last proposal", sa(validSABody + "00000000"), NotifyPayloadMalformed, PayloadSA, 60},
		{"proposal followed by a KE inside the SA", sa("00000001 00000001 04000014 01010001 0000000c 01010000 80010001"), NotifyBadProposalSyntax, PayloadSA, 60},
		{"transform followed by a proposal inside a proposal", sa("00000001 00000001 00000014 01010001 0200000c 01010000 80010001"), NotifyBadProposalSyntax, PayloadProposal, 60},
		{"attribute header truncated", sa("00000001 00000001 00000012 01010001 0000000a 01010000 8001"), NotifyPayloadMalformed, PayloadTransform, 56},
		{"TLV attribute overruns the transform", sa("00000001 00000001 00000016 01010001 0000000e 01010000 00010010 aabb"), NotifyPayloadMalformed, PayloadTransform, 56},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(c.msg)
			if err == nil {
				t.Fatalf("decoded: %v", m.PayloadNames())
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if perr.Notify != c.notify || perr.Payload != c.payload || perr.Offset != c.offset {
				t.Errorf("got %s / %s / offset %d (%v), want %s / %s / offset %d",
					perr.Notify, perr.Payload.Abbrev(), perr.Offset, err, c.notify, c.payload.Abbrev(), c.offset)
			}
			if NotifyFor(err) != c.notify {
				t.Errorf("NotifyFor = %s", NotifyFor(err))
			}
		})
	}
}

func TestUnknownNonCriticalPayloadIsKept(t *testing.T) {
	raw := message(t, PayloadKE, payloadHex(t, 99, "aabb")+payloadHex(t, PayloadSAK, "0102")+"00400005 ff")
	// The last payload (type 15, SAK) sets a reserved bit that is not the
	// critical one: tolerated.
	raw[34+6+1] = 0x40
	m, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.PayloadNames(), ","); got != "KE,PAYLOAD_99,SAK" {
		t.Fatalf("payloads %s", got)
	}
	u := m.Payloads[1].(*Unknown)
	if u.Kind != 99 || u.Data[0] != 1 {
		t.Errorf("unknown payload %+v", u)
	}
}

func TestReservedBitsTolerated(t *testing.T) {
	raw := message(t, PayloadSA, payloadHex(t, PayloadNone, "00000001 00000001 00ff0014 01010001 00ee000c 0101abcd 80010001"))
	raw[29] = 0x7f // reserved octet of the SA's generic header
	raw[19] = 0xf0 // reserved flag bits
	m, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Flags != 0xf0 || len(First[*SA](m).Proposals[0].Transforms) != 1 {
		t.Errorf("%+v", m.Header)
	}
}

func TestMalformedCiphertext(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 16))
	iv := make([]byte, 16)
	for _, n := range []int{0, 15, 17} {
		raw := message(t, PayloadHash, strings.Repeat("00", n))
		raw[19] = byte(FlagEncryption)
		m, err := Decode(raw)
		if err != nil {
			t.Fatalf("%d bytes: header decode: %v", n, err)
		}
		err = m.Decrypt(block, iv)
		var perr *Error
		if !errors.As(err, &perr) || perr.Notify != NotifyPayloadMalformed {
			t.Errorf("%d bytes of ciphertext: %v", n, err)
		}
	}
	if err := (&Message{}).Decrypt(block, iv); err == nil {
		t.Errorf("decrypting an unencrypted message succeeded")
	}
}
