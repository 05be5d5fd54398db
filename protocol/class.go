package protocol

import "strings"

// NormalizeClass maps an NVML device name to the GPU class the market and
// the PoC rate table (poc.ClassRates) use: "NVIDIA H100 80GB HBM3" → "H100",
// "NVIDIA H100 PCIe" → "H100-PCIE", "NVIDIA A100-SXM4-40GB" → "A100",
// "NVIDIA GeForce RTX 4090" → "RTX4090", "NVIDIA L40S" → "L40S". Names it
// does not recognise keep their model token (upper case, [A-Z0-9-]), so a
// new card shows up under a readable class instead of disappearing; the
// server decides whether that class can be listed.
//
// The server should recompute the class from the reported name rather than
// trust the agent's: both call this function.
func NormalizeClass(name string) string {
	s := strings.ToUpper(strings.TrimSpace(name))
	tokens := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '-' || r == '_' || r == '/' })
	// Drop vendor and brand words; the mocks prefix "Mock".
	for len(tokens) > 0 {
		switch tokens[0] {
		case "MOCK", "NVIDIA", "GEFORCE", "TESLA", "QUADRO":
			tokens = tokens[1:]
			continue
		}
		break
	}
	if len(tokens) == 0 {
		return "UNKNOWN"
	}
	model := tokens[0]
	rest := tokens[1:]
	has := func(w string) bool {
		for _, t := range rest {
			if t == w {
				return true
			}
		}
		return false
	}
	switch {
	case model == "RTX" && len(rest) > 0 && isDigits(rest[0]):
		// "RTX 4090", "RTX 4090 D", "RTX 3090 Ti"
		model = "RTX" + rest[0]
		if len(rest) > 1 && rest[1] == "TI" {
			model += "TI"
		}
	case model == "H100" && (has("PCIE") || has("NVL")):
		// The PCIe and NVL boards run at lower clocks and power than SXM;
		// counting them as SXM would overstate capacity (NVL is closer to
		// PCIe than to SXM in dense INT8, so it takes the conservative class).
		model = "H100-PCIE"
	}
	return sanitizeClass(model)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func sanitizeClass(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 32; i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "UNKNOWN"
	}
	return b.String()
}
