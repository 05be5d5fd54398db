package market

import (
	"encoding/binary"
	"errors"
)

// Wire format, version 1 (version 2: the same, then the kind's
// interruptible fields, for an upsert with a spot floor or an
// interruptible order; a version-2 encoding whose extra fields are all
// zero is malformed, so every command still has exactly one encoding and
// a version-1 log replays unchanged). Deterministic and canonical: fixed-width
// big-endian integers, strings as a uint16 length then bytes, booleans as
// one byte 0 or 1, and per kind only the fields that kind uses, in a fixed
// order. Decoding rejects trailing bytes and any other byte for a boolean,
// so MarshalCommand(UnmarshalCommand(b)) == b whenever decoding succeeds:
// the persisted log and its replay are the same bytes.
const (
	wireVersion  = 1
	wireVersion2 = 2
)

// hasSpotFields says whether c needs the version-2 encoding.
func (c *Command) hasSpotFields() bool {
	switch c.Kind {
	case KindUpsertMachine:
		return c.SpotFloor != 0 || c.NoticeMs != 0
	case KindPlaceOrder:
		return c.Interruptible
	}
	return false
}

// errTruncated is wrapped into ErrMalformed.
var errTruncated = errors.New("truncated")

// MarshalCommand appends the canonical encoding of c to dst. It does not
// validate c (the log records what was submitted, errors included).
func MarshalCommand(dst []byte, c *Command) []byte {
	v := byte(wireVersion)
	if c.hasSpotFields() {
		v = wireVersion2
	}
	dst = append(dst, v, byte(c.Kind))
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Now))
	str := func(s string) {
		if len(s) > 0xFFFF {
			s = s[:0xFFFF]
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
		dst = append(dst, s...)
	}
	i64 := func(v int64) { dst = binary.BigEndian.AppendUint64(dst, uint64(v)) }
	flag := func(b bool) {
		if b {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	}
	rtts := func(r []uint16) {
		n := len(r)
		if n > 0xFF {
			n = 0xFF
		}
		dst = append(dst, byte(n))
		for _, v := range r[:n] {
			dst = binary.BigEndian.AppendUint16(dst, v)
		}
	}
	switch c.Kind {
	case KindUpsertMachine:
		str(c.Machine)
		str(c.Provider)
		str(c.Model)
		i64(c.GPUs)
		i64(c.VRAMGiB)
		str(c.Region)
		i64(c.Price)
		i64(c.ReliabilityBps)
		flag(c.Verified)
		rtts(c.RTTms)
		if v == wireVersion2 {
			i64(c.SpotFloor)
			i64(c.NoticeMs)
		}
	case KindRemoveMachine:
		str(c.Machine)
	case KindHeartbeat:
		str(c.Machine)
		dst = binary.BigEndian.AppendUint64(dst, c.Free)
		flag(c.Healthy)
		rtts(c.RTTms)
	case KindSuspendProvider, KindReinstateProvider:
		str(c.Provider)
	case KindPlaceOrder:
		str(c.Order)
		str(c.Buyer)
		dst = append(dst, byte(c.Type))
		str(c.Machine)
		str(c.Model)
		i64(c.GPUs)
		i64(c.VRAMGiB)
		str(c.Region)
		i64(c.Price)
		i64(c.MaxRTTms)
		i64(c.Hours)
		i64(c.ExpiresAt)
		flag(c.LatencyFirst)
		if v == wireVersion2 {
			flag(c.Interruptible)
		}
	case KindCancelOrder:
		str(c.Order)
		str(c.Buyer)
	case KindConfirmLease, KindReleaseLease:
		str(c.Order)
	}
	return dst
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = errTruncated
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) str() string {
	v := d.take(2)
	if v == nil {
		return ""
	}
	return string(d.take(int(binary.BigEndian.Uint16(v))))
}

func (d *decoder) flag() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	default:
		if d.err == nil {
			d.err = ErrBadFlag
		}
		return false
	}
}

func (d *decoder) rtts() []uint16 {
	n := int(d.u8())
	if n == 0 || d.err != nil {
		return nil
	}
	out := make([]uint16, 0, n)
	for i := 0; i < n; i++ {
		v := d.take(2)
		if v == nil {
			return nil
		}
		out = append(out, binary.BigEndian.Uint16(v))
	}
	return out
}

// UnmarshalCommand decodes one command encoded by MarshalCommand. It checks
// the encoding only; call Validate (or Apply) for the ranges.
func UnmarshalCommand(b []byte) (Command, error) {
	d := decoder{b: b}
	var c Command
	v := d.u8()
	if (v != wireVersion && v != wireVersion2) || d.err != nil {
		return Command{}, ErrMalformed
	}
	c.Kind = Kind(d.u8())
	c.Now = int64(d.u64())
	switch c.Kind {
	case KindUpsertMachine:
		c.Machine, c.Provider, c.Model = d.str(), d.str(), d.str()
		c.GPUs, c.VRAMGiB = int64(d.u64()), int64(d.u64())
		c.Region = d.str()
		c.Price, c.ReliabilityBps = int64(d.u64()), int64(d.u64())
		c.Verified = d.flag()
		c.RTTms = d.rtts()
		if v == wireVersion2 {
			c.SpotFloor, c.NoticeMs = int64(d.u64()), int64(d.u64())
		}
	case KindRemoveMachine:
		c.Machine = d.str()
	case KindHeartbeat:
		c.Machine = d.str()
		c.Free = d.u64()
		c.Healthy = d.flag()
		c.RTTms = d.rtts()
	case KindTick:
	case KindSuspendProvider, KindReinstateProvider:
		c.Provider = d.str()
	case KindPlaceOrder:
		c.Order, c.Buyer = d.str(), d.str()
		c.Type = OrderType(d.u8())
		c.Machine, c.Model = d.str(), d.str()
		c.GPUs, c.VRAMGiB = int64(d.u64()), int64(d.u64())
		c.Region = d.str()
		c.Price, c.MaxRTTms, c.Hours, c.ExpiresAt = int64(d.u64()), int64(d.u64()), int64(d.u64()), int64(d.u64())
		c.LatencyFirst = d.flag()
		if v == wireVersion2 {
			c.Interruptible = d.flag()
		}
	case KindCancelOrder:
		c.Order, c.Buyer = d.str(), d.str()
	case KindConfirmLease, KindReleaseLease:
		c.Order = d.str()
	default:
		return Command{}, ErrMalformed
	}
	if d.err != nil || len(d.b) != 0 || (v == wireVersion2) != c.hasSpotFields() {
		return Command{}, ErrMalformed
	}
	return c, nil
}
