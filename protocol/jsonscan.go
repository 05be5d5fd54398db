package protocol

import (
	"math"
	"unicode/utf8"
)

// The JSON primitives under fastHeartbeat (fastjson.go): a scanner that
// reads the subset encoding/json writes and declines anything else.

// scanner reads JSON from b at i. Every method skips leading whitespace
// and returns false on anything outside the fast path's subset.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// null consumes a null and reports whether there was one. encoding/json
// leaves a field alone on null (a slice, map or pointer becomes nil): with
// every field zero to begin with and seen once, leaving it alone is that.
func (s *scanner) null() bool {
	if s.peek() == 'n' && len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// object reads {"key": value, ...}, calling field with each key's raw
// bytes positioned before its value; field must consume the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.rawString()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !field(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array reads [v, ...], calling elem for each element (it must consume
// it); empty reports whether there were none.
func (s *scanner) array(elem func() bool) (empty, ok bool) {
	if s.peek() != '[' {
		return false, false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true, true
	}
	for {
		if !elem() {
			return false, false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return false, true
		default:
			return false, false
		}
	}
}

// rawString reads a string without escapes or control characters, valid
// UTF-8, and returns its bytes (aliasing the input).
func (s *scanner) rawString() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			raw := s.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return nil, false // encoding/json substitutes U+FFFD: its call
			}
			return raw, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (s *scanner) str(dst *string) bool {
	if s.null() {
		return true
	}
	raw, ok := s.rawString()
	if ok {
		*dst = string(raw)
	}
	return ok
}

func (s *scanner) bool(dst *bool) bool {
	if s.null() {
		return true
	}
	rest := s.b[s.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*dst = true
		s.i += 4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*dst = false
		s.i += 5
	default:
		return false
	}
	return s.endOfLiteral()
}

// endOfLiteral: a number or literal must not run into letters or digits
// ("truex", "01", "1e3", "1.5" are for encoding/json to judge).
func (s *scanner) endOfLiteral() bool {
	if s.i == len(s.b) {
		return true
	}
	switch c := s.b[s.i]; {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '.', c == '-', c == '+':
		return false
	}
	return true
}

// digits reads an unsigned decimal integer no greater than max: "0" or
// [1-9][0-9]*.
func (s *scanner) digits(max uint64) (uint64, bool) {
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
		s.i++
	}
	n := s.i - start
	if n == 0 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	return v, s.endOfLiteral()
}

func (s *scanner) uint(dst *uint64, max uint64) bool {
	if s.null() {
		return true
	}
	s.ws()
	v, ok := s.digits(max)
	if ok {
		*dst = v
	}
	return ok
}

func (s *scanner) uint32(dst *uint32) bool {
	var v uint64
	if !s.uint(&v, math.MaxUint32) {
		return false
	}
	*dst = uint32(v)
	return true
}

func (s *scanner) int(dst *int64) bool {
	if s.null() {
		return true
	}
	s.ws()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	var max uint64 = math.MaxInt64
	if neg {
		max++
	}
	v, ok := s.digits(max)
	if !ok {
		return false
	}
	if neg {
		*dst = int64(-v) // two's complement: -(1<<63) maps to MinInt64
	} else {
		*dst = int64(v)
	}
	return true
}

func (s *scanner) goInt(dst *int) bool {
	var v int64
	if !s.int(&v) || int64(int(v)) != v {
		return false
	}
	*dst = int(v)
	return true
}

func (s *scanner) strings(dst *[]string) bool {
	if s.null() {
		return true
	}
	var out []string
	empty, ok := s.array(func() bool {
		var v string
		if s.null() {
			out = append(out, "")
			return true
		}
		if !s.str(&v) {
			return false
		}
		out = append(out, v)
		return true
	})
	if empty {
		out = []string{}
	}
	*dst = out
	return ok
}
