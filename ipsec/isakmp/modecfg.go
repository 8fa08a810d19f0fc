package isakmp

import (
	"encoding/binary"
	"fmt"
)

// ConfigType is the Attribute Message Type of an Attribute payload
// (draft-ietf-ipsec-isakmp-mode-cfg-05 §3.2).
type ConfigType uint8

const (
	CfgRequest ConfigType = 1
	CfgReply   ConfigType = 2
	CfgSet     ConfigType = 3
	CfgAck     ConfigType = 4
)

func (c ConfigType) String() string {
	switch c {
	case CfgRequest:
		return "ISAKMP_CFG_REQUEST"
	case CfgReply:
		return "ISAKMP_CFG_REPLY"
	case CfgSet:
		return "ISAKMP_CFG_SET"
	case CfgAck:
		return "ISAKMP_CFG_ACK"
	}
	return fmt.Sprintf("CFG_TYPE(%d)", uint8(c))
}

// Mode Config attribute types (draft-ietf-ipsec-isakmp-mode-cfg-05 §3.2),
// XAUTH ones (draft-ietf-ipsec-isakmp-xauth-06 §4) and the Cisco Unity ones
// strongSwan knows.
const (
	CfgInternalIP4Address  AttributeType = 1
	CfgInternalIP4Netmask  AttributeType = 2
	CfgInternalIP4DNS      AttributeType = 3
	CfgInternalIP4NBNS     AttributeType = 4
	CfgInternalAddrExpiry  AttributeType = 5
	CfgInternalIP4DHCP     AttributeType = 6
	CfgApplicationVersion  AttributeType = 7
	CfgInternalIP6Address  AttributeType = 8
	CfgInternalIP6Netmask  AttributeType = 9
	CfgInternalIP6DNS      AttributeType = 10
	CfgInternalIP6NBNS     AttributeType = 11
	CfgInternalIP6DHCP     AttributeType = 12
	CfgInternalIP4Subnet   AttributeType = 13
	CfgSupportedAttributes AttributeType = 14
	CfgInternalIP6Subnet   AttributeType = 15
	XAuthType              AttributeType = 16520
	XAuthUserName          AttributeType = 16521
	XAuthUserPassword      AttributeType = 16522
	XAuthPasscode          AttributeType = 16523
	XAuthMessage           AttributeType = 16524
	XAuthChallenge         AttributeType = 16525
	XAuthDomain            AttributeType = 16526
	XAuthStatus            AttributeType = 16527
	XAuthNextPin           AttributeType = 16528
	XAuthAnswer            AttributeType = 16529
	UnityBanner            AttributeType = 28672
	UnitySavePasswd        AttributeType = 28673
	UnityDefDomain         AttributeType = 28674
	UnitySplitDomain       AttributeType = 28675
	UnitySplitInclude      AttributeType = 28676
	UnityNATTPort          AttributeType = 28677
	UnitySplitExclude      AttributeType = 28678
	UnityPFS               AttributeType = 28679
	UnityFWType            AttributeType = 28680
	UnityBackupServers     AttributeType = 28681
	UnityDDNSHostname      AttributeType = 28682
)

var cfgAttrNames = map[AttributeType]string{
	CfgInternalIP4Address: "INTERNAL_IP4_ADDRESS", CfgInternalIP4Netmask: "INTERNAL_IP4_NETMASK",
	CfgInternalIP4DNS: "INTERNAL_IP4_DNS", CfgInternalIP4NBNS: "INTERNAL_IP4_NBNS",
	CfgInternalAddrExpiry: "INTERNAL_ADDRESS_EXPIREY", CfgInternalIP4DHCP: "INTERNAL_IP4_DHCP",
	CfgApplicationVersion: "APPLICATION_VERSION", CfgInternalIP6Address: "INTERNAL_IP6_ADDRESS",
	CfgInternalIP6Netmask: "INTERNAL_IP6_NETMASK", CfgInternalIP6DNS: "INTERNAL_IP6_DNS",
	CfgInternalIP6NBNS: "INTERNAL_IP6_NBNS", CfgInternalIP6DHCP: "INTERNAL_IP6_DHCP",
	CfgInternalIP4Subnet: "INTERNAL_IP4_SUBNET", CfgSupportedAttributes: "SUPPORTED_ATTRIBUTES",
	CfgInternalIP6Subnet: "INTERNAL_IP6_SUBNET",
	XAuthType:            "XAUTH_TYPE", XAuthUserName: "XAUTH_USER_NAME", XAuthUserPassword: "XAUTH_USER_PASSWORD",
	XAuthPasscode: "XAUTH_PASSCODE", XAuthMessage: "XAUTH_MESSAGE", XAuthChallenge: "XAUTH_CHALLANGE",
	XAuthDomain: "XAUTH_DOMAIN", XAuthStatus: "XAUTH_STATUS", XAuthNextPin: "XAUTH_NEXT_PIN", XAuthAnswer: "XAUTH_ANSWER",
	UnityBanner: "UNITY_BANNER", UnitySavePasswd: "UNITY_SAVE_PASSWD", UnityDefDomain: "UNITY_DEF_DOMAIN",
	UnitySplitDomain: "UNITY_SPLIT_DOMAIN", UnitySplitInclude: "UNITY_SPLIT_INCLUDE", UnityNATTPort: "UNITY_NATT_PORT",
	UnitySplitExclude: "UNITY_SPLIT_EXCLUDE", UnityPFS: "UNITY_PFS", UnityFWType: "UNITY_FW_TYPE",
	UnityBackupServers: "UNITY_BACKUP_SERVERS", UnityDDNSHostname: "UNITY_DDNS_HOSTNAME",
}

// ConfigAttributeName returns Wireshark's name for a Mode Config or XAUTH
// attribute type.
func ConfigAttributeName(t AttributeType) string { return attrName(cfgAttrNames, t) }

// ConfigAttributes is the Attribute payload of the Transaction exchange
// (draft-ietf-ipsec-isakmp-mode-cfg-05 §3.2), used by Mode Config and XAUTH.
// The Identifier pairs a reply or acknowledgement with its request.
type ConfigAttributes struct {
	received
	CfgType    ConfigType
	Identifier uint16
	Attributes []Attribute
}

const configFixedLen = 4

func (*ConfigAttributes) Type() PayloadType { return PayloadAttributes }
func (p *ConfigAttributes) Body() []byte    { return bodyOf(p) }

func (p *ConfigAttributes) appendBody(b []byte) ([]byte, error) {
	b = append(b, byte(p.CfgType), 0)
	b = binary.BigEndian.AppendUint16(b, p.Identifier)
	return appendAttributes(b, p.Attributes)
}

func (p *ConfigAttributes) decodeBody(body []byte, off int) error {
	if err := checkMin(PayloadAttributes, body, configFixedLen, off); err != nil {
		return err
	}
	p.CfgType, p.Identifier = ConfigType(body[0]), binary.BigEndian.Uint16(body[2:])
	attrs, err := decodeAttributes(body[configFixedLen:], PayloadAttributes, off+genericHeaderLen+configFixedLen)
	p.Attributes = attrs
	return err
}
