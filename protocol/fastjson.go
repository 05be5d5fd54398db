package protocol

import (
	"math"
)

// fastHeartbeat decodes a heartbeat body without reflection, for the form
// agents send (what encoding/json.Marshal writes, whitespace allowed): the
// known keys spelled exactly, each once; strings without escapes; integers
// as plain digits. Anything else (an unknown or differently cased key, an
// escape, a fraction or exponent, a duplicate key, trailing data, bad
// input of any kind) returns false, and the caller decodes the body with
// encoding/json, which then decides: the fast path never accepts what
// encoding/json would refuse, nor reads anything differently
// (FuzzFastHeartbeat checks both). It exists because reflection-driven
// decoding of an 8-GPU beat cost as much as its signature check.
func fastHeartbeat(data []byte, h *Heartbeat) bool {
	s := scanner{b: data}
	var seen fieldSet
	ok := s.object(func(key []byte) bool {
		var bit uint32
		var ok bool
		switch string(key) {
		case "agent_id":
			bit, ok = 1<<0, s.str(&h.AgentID)
		case "seq":
			bit, ok = 1<<1, s.uint(&h.Seq, math.MaxUint64)
		case "boot_id":
			bit, ok = 1<<2, s.str(&h.BootID)
		case "sent_at":
			bit, ok = 1<<3, s.int(&h.SentAt)
		case "agent_version":
			bit, ok = 1<<4, s.str(&h.AgentVersion)
		case "driver_version":
			bit, ok = 1<<5, s.str(&h.DriverVersion)
		case "cuda_version":
			bit, ok = 1<<6, s.str(&h.CUDAVersion)
		case "simulated":
			bit, ok = 1<<7, s.bool(&h.Simulated)
		case "gpus":
			bit, ok = 1<<8, s.gpus(&h.GPUs)
		case "rtt_ms":
			bit, ok = 1<<9, s.rtts(&h.RTTms)
		case "running_leases":
			bit, ok = 1<<10, s.leases(&h.Leases)
		case "provider_address":
			bit, ok = 1<<11, s.str(&h.ProviderAddress)
		default:
			return false
		}
		return seen.once(bit, ok)
	})
	if !ok {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// fieldSet is the fields an object has had, one bit each: a key seen
// twice declines the fast path (encoding/json would keep the last value
// of a scalar but merge a map's, not a distinction worth copying here).
type fieldSet uint32

// once records bit and passes ok on, or declines a repeated field.
func (f *fieldSet) once(bit uint32, ok bool) bool {
	if uint32(*f)&bit != 0 {
		return false
	}
	*f |= fieldSet(bit)
	return ok
}

func (s *scanner) rtts(dst *map[string]int64) bool {
	if s.null() {
		return true
	}
	m := make(map[string]int64, 8)
	ok := s.object(func(key []byte) bool {
		var v int64
		if s.null() {
			// encoding/json stores the zero value for a null map element.
			m[string(key)] = 0
			return true
		}
		if !s.int(&v) {
			return false
		}
		m[string(key)] = v
		return true
	})
	*dst = m
	return ok
}

func (s *scanner) gpus(dst *[]GPU) bool {
	if s.null() {
		return true
	}
	out := make([]GPU, 0, 8)
	_, ok := s.array(func() bool {
		out = append(out, GPU{})
		if s.null() {
			return true
		}
		return s.gpu(&out[len(out)-1])
	})
	*dst = out
	return ok
}

func (s *scanner) gpu(g *GPU) bool {
	var seen fieldSet
	return s.object(func(key []byte) bool {
		var bit uint32
		var ok bool
		switch string(key) {
		case "index":
			bit, ok = 1<<0, s.goInt(&g.Index)
		case "uuid":
			bit, ok = 1<<1, s.str(&g.UUID)
		case "name":
			bit, ok = 1<<2, s.str(&g.Name)
		case "class":
			bit, ok = 1<<3, s.str(&g.Class)
		case "memory_total_mib":
			bit, ok = 1<<4, s.uint(&g.MemoryTotalMiB, math.MaxUint64)
		case "memory_used_mib":
			bit, ok = 1<<5, s.uint(&g.MemoryUsedMiB, math.MaxUint64)
		case "utilization_pct":
			bit, ok = 1<<6, s.uint32(&g.UtilizationPct)
		case "temperature_c":
			bit, ok = 1<<7, s.uint32(&g.TemperatureC)
		case "power_mw":
			bit, ok = 1<<8, s.uint32(&g.PowerMW)
		case "power_limit_mw":
			bit, ok = 1<<9, s.uint32(&g.PowerLimitMW)
		case "ecc_uncorrected":
			bit, ok = 1<<10, s.uint(&g.ECCUncorrected, math.MaxUint64)
		case "pcie_gen":
			bit, ok = 1<<11, s.goInt(&g.PCIeGen)
		case "pcie_width":
			bit, ok = 1<<12, s.goInt(&g.PCIeWidth)
		case "mig_enabled":
			bit, ok = 1<<13, s.bool(&g.MIGEnabled)
		case "unsupported":
			bit, ok = 1<<14, s.strings(&g.Unsupported)
		case "free":
			bit, ok = 1<<15, s.bool(&g.Free)
		case "lease_id":
			bit, ok = 1<<16, s.str(&g.LeaseID)
		default:
			return false
		}
		return seen.once(bit, ok)
	})
}

func (s *scanner) leases(dst *[]RunningLease) bool {
	if s.null() {
		return true
	}
	var out []RunningLease
	empty, ok := s.array(func() bool {
		out = append(out, RunningLease{})
		if s.null() {
			return true
		}
		return s.lease(&out[len(out)-1])
	})
	if empty {
		out = []RunningLease{}
	}
	*dst = out
	return ok
}

func (s *scanner) lease(l *RunningLease) bool {
	var seen fieldSet
	return s.object(func(key []byte) bool {
		var bit uint32
		var ok bool
		switch string(key) {
		case "lease_id":
			bit, ok = 1<<0, s.str(&l.LeaseID)
		case "state":
			bit, ok = 1<<1, s.str(&l.State)
		case "gpus":
			bit, ok = 1<<2, s.strings(&l.GPUs)
		case "driver":
			bit, ok = 1<<3, s.str(&l.Driver)
		case "started_at":
			bit, ok = 1<<4, s.int(&l.StartedAt)
		case "exit_code":
			bit = 1 << 5
			if ok = s.null(); !ok {
				var v int
				if ok = s.goInt(&v); ok {
					l.ExitCode = &v
				}
			}
		case "error":
			bit, ok = 1<<6, s.str(&l.Error)
		case "pull":
			bit = 1 << 7
			if ok = s.null(); !ok {
				p := new(PullProgress)
				if ok = s.pull(p); ok {
					l.Pull = p
				}
			}
		default:
			return false
		}
		return seen.once(bit, ok)
	})
}

func (s *scanner) pull(p *PullProgress) bool {
	var seen fieldSet
	return s.object(func(key []byte) bool {
		var bit uint32
		var ok bool
		switch string(key) {
		case "image":
			bit, ok = 1<<0, s.str(&p.Image)
		case "digest":
			bit, ok = 1<<1, s.str(&p.Digest)
		case "done_bytes":
			bit, ok = 1<<2, s.int(&p.Done)
		case "total_bytes":
			bit, ok = 1<<3, s.int(&p.Total)
		case "cached":
			bit, ok = 1<<4, s.bool(&p.Cached)
		default:
			return false
		}
		return seen.once(bit, ok)
	})
}
