package gpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/highway-compute/highway/protocol"
)

func TestFakeProfiles(t *testing.T) {
	cases := []struct {
		profile, class string
		n              int
		ecc            bool
	}{
		{"dgxh100", "H100", 8, true},
		{"dgxa100", "A100", 8, true},
		{"dgxh200", "H200", 8, true},
		{"dgxb200", "B200", 8, true},
		{"h100x8", "H100", 8, true},
		{"a100x4", "A100", 4, true},
		{"rtx4090x2", "RTX4090", 2, false},
		{"l40sx4", "L40S", 4, true},
	}
	for _, c := range cases {
		t.Run(c.profile, func(t *testing.T) {
			f, err := FakeProfile(c.profile)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := Discover(f)
			if err != nil {
				t.Fatal(err)
			}
			if !inv.Simulated || inv.Profile != c.profile || len(inv.GPUs) != c.n {
				t.Fatalf("inventory %+v", inv)
			}
			if inv.DriverVersion != "550.54.15" || inv.CUDAVersion != "12.4" {
				t.Fatalf("versions %q %q", inv.DriverVersion, inv.CUDAVersion)
			}
			for i, g := range inv.GPUs {
				if g.Class != c.class || g.Index != i || !strings.HasPrefix(g.UUID, "GPU-") || !g.Free {
					t.Fatalf("gpu %d: %+v", i, g)
				}
				if g.MemoryTotalMiB == 0 || g.MemoryUsedMiB == 0 || g.PowerLimitMW == 0 || g.PCIeWidth != 16 {
					t.Fatalf("telemetry missing: %+v", g)
				}
				hasECC := !strings.Contains(strings.Join(g.Unsupported, ","), "ecc")
				if hasECC != c.ecc {
					t.Fatalf("ecc support %v, unsupported=%v", hasECC, g.Unsupported)
				}
			}
			hb := protocol.Heartbeat{AgentID: "a", Seq: 1, BootID: "b", SentAt: 1, GPUs: inv.GPUs}
			if err := hb.Validate(); err != nil {
				t.Fatalf("fake inventory does not validate: %v", err)
			}
			// Stable UUIDs: the same profile gives the same identities.
			again, _ := FakeProfile(c.profile)
			inv2, _ := Discover(again)
			if inv2.GPUs[0].UUID != inv.GPUs[0].UUID {
				t.Fatal("UUIDs not stable")
			}
		})
	}
	a, _ := FakeProfileSeed("h100x2", "machine-a")
	b, _ := FakeProfileSeed("h100x2", "machine-b")
	ia, _ := Discover(a)
	ib, _ := Discover(b)
	if ia.GPUs[0].UUID == ib.GPUs[0].UUID {
		t.Fatal("different seeds share UUIDs")
	}
	for _, bad := range []string{"", "h100x0", "h100x65", "voodoo2x1", "dgx"} {
		if _, err := FakeProfile(bad); err == nil {
			t.Errorf("profile %q accepted", bad)
		}
	}
}

func TestSetLoad(t *testing.T) {
	f, _ := FakeProfile("h100x2")
	f.SetLoad(1, 90)
	f.SetLoad(7, 50) // out of range: ignored
	inv, err := Discover(f)
	if err != nil {
		t.Fatal(err)
	}
	if inv.GPUs[0].UtilizationPct != 0 || inv.GPUs[1].UtilizationPct != 90 || inv.GPUs[1].PowerMW <= inv.GPUs[0].PowerMW {
		t.Fatalf("load not reflected: %+v", inv.GPUs)
	}
}

// The upstream DGX mock leaves telemetry unset; Discover must still work
// when a GPU cannot report something, naming what it could not read.
func TestUnsupportedTelemetry(t *testing.T) {
	s := dgxa100.New()
	for _, d := range s.Devices {
		dev := d.(*server.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 40, nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		dev.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		dev.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 3, nvml.SUCCESS }
		dev.GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { return 4, nvml.SUCCESS }
		dev.GetCurrPcieLinkWidthFunc = func() (int, nvml.Return) { return 16, nvml.SUCCESS }
	}
	inv, err := Discover(s)
	if err != nil {
		t.Fatal(err)
	}
	g := inv.GPUs[0]
	if inv.Simulated {
		t.Fatal("a plain nvml.Interface must not be marked simulated")
	}
	if g.ECCUncorrected != 3 || g.TemperatureC != 40 || strings.Join(g.Unsupported, ",") != "utilization,power,power_limit" {
		t.Fatalf("%+v", g)
	}
	// A lost GPU fails the snapshot instead of being reported as idle.
	s.Devices[3].(*server.Device).GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	if _, err := Discover(s); err == nil || !strings.Contains(err.Error(), "ERROR_GPU_IS_LOST") {
		t.Fatalf("lost GPU: %v", err)
	}
}

// Init failures stop everything: nothing else may be called on the
// library (the real one would kill the process). The mock panics if any
// unset function is called, which is what this test relies on.
func TestInitFailure(t *testing.T) {
	shutdowns := 0
	for ret, want := range map[nvml.Return]error{
		nvml.ERROR_LIBRARY_NOT_FOUND: ErrNoNVML,
		nvml.ERROR_DRIVER_NOT_LOADED: ErrNoDriver,
	} {
		lib := &mock.Interface{
			InitFunc:     func() nvml.Return { return ret },
			ShutdownFunc: func() nvml.Return { shutdowns++; return nvml.SUCCESS },
		}
		_, err := Discover(lib)
		if !errors.Is(err, want) {
			t.Fatalf("%v: got %v", ret, err)
		}
	}
	if shutdowns != 0 {
		t.Fatal("Shutdown called after a failed Init")
	}
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_NO_PERMISSION }}
	if _, err := Discover(lib); err == nil || !strings.Contains(err.Error(), "ERROR_NO_PERMISSION") {
		t.Fatalf("other init error: %v", err)
	}
	if _, err := Discover(nil); !errors.Is(err, ErrNoNVML) {
		t.Fatal(err)
	}
}

// The real library on this machine: no driver, so Init fails cleanly.
// Skipped where a driver is present.
func TestRealNVMLWithoutDriver(t *testing.T) {
	lib := nvml.New()
	inv, err := Discover(lib)
	if err == nil {
		t.Skipf("an NVIDIA driver is present (%d GPUs): nothing to test here", len(inv.GPUs))
	}
	if !errors.Is(err, ErrNoNVML) && !errors.Is(err, ErrNoDriver) {
		t.Fatalf("unexpected error: %v", err)
	}
}
