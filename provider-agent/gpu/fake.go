package gpu

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Fake is a simulated NVML built from go-nvml's mock devices, for tests and
// the demo fleet. It reports Simulated() == true, which Snapshot copies into
// the inventory so every report from a fake agent says so.
type Fake struct {
	*server.Server
	profile string
	mu      sync.Mutex
	load    []fakeLoad
}

// fakeLoad is the telemetry of one simulated GPU.
type fakeLoad struct {
	util, tempC, powerMW, limitMW uint32
	pcieGen, pcieWidth            int
	ecc                           bool
}

// Simulated marks the library as fake.
func (f *Fake) Simulated() bool { return true }

// ProfileName returns the profile the fake was built from.
func (f *Fake) ProfileName() string { return f.profile }

// SetLoad sets a simulated GPU's utilisation; temperature and power follow
// it linearly between idle and the power limit, roughly as real cards do.
// The demo fleet uses it to make leased GPUs look busy.
func (f *Fake) SetLoad(index int, utilPct uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if index < 0 || index >= len(f.load) {
		return
	}
	l := &f.load[index]
	l.util = min(utilPct, 100)
	l.tempC = 32 + 50*l.util/100
	l.powerMW = l.limitMW/10 + (l.limitMW*8/10)*l.util/100
}

type fakeModel struct {
	cfg       gpus.Config
	limitW    uint32
	pcieGen   int
	ecc       bool
	memUsedMB uint64
}

// Single-GPU models. The A100/H100/H200/B200 configs are go-nvml's; the
// Ada cards are not in go-nvml's set, so they are described here from
// NVIDIA's datasheets (name as NVML prints it, memory as NVML reports it).
var fakeModels = map[string]fakeModel{
	"a100":    {gpus.A100_SXM4_80GB, 400, 4, true, 512},
	"a30":     {gpus.A30_PCIE_24GB, 165, 4, true, 400},
	"h100":    {gpus.H100_SXM5_80GB, 700, 5, true, 560},
	"h200":    {gpus.H200_SXM5_141GB, 700, 5, true, 560},
	"b200":    {gpus.B200_SXM5_180GB, 1000, 5, true, 600},
	"l40s":    {gpus.Config{Name: "NVIDIA L40S", Architecture: nvml.DEVICE_ARCH_ADA, Brand: nvml.BRAND_NVIDIA, MemoryMB: 46068, CudaMajor: 8, CudaMinor: 9, PciDeviceId: 0x26B910DE}, 350, 4, true, 420},
	"l4":      {gpus.Config{Name: "NVIDIA L4", Architecture: nvml.DEVICE_ARCH_ADA, Brand: nvml.BRAND_NVIDIA, MemoryMB: 23034, CudaMajor: 8, CudaMinor: 9, PciDeviceId: 0x27B810DE}, 72, 4, true, 300},
	"rtx4090": {gpus.Config{Name: "NVIDIA GeForce RTX 4090", Architecture: nvml.DEVICE_ARCH_ADA, Brand: nvml.BRAND_GEFORCE, MemoryMB: 24564, CudaMajor: 8, CudaMinor: 9, PciDeviceId: 0x268410DE}, 450, 4, false, 350},
}

// dgxProfiles are the go-nvml DGX systems: 8 GPUs each. dgxa100 keeps
// go-nvml's 40 GB "Mock" A100 so its names match the upstream mock.
var dgxProfiles = map[string]fakeModel{
	"dgxa100": {gpus.A100_SXM4_40GB, 400, 4, true, 512},
	"dgxh100": fakeModels["h100"],
	"dgxh200": fakeModels["h200"],
	"dgxb200": fakeModels["b200"],
}

// FakeProfiles lists the profile names FakeProfile accepts; "<model>x<n>"
// takes any n from 1 to 64.
func FakeProfiles() []string {
	var out []string
	for k := range dgxProfiles {
		out = append(out, k)
	}
	for k := range fakeModels {
		out = append(out, k+"xN")
	}
	sort.Strings(out)
	return out
}

// FakeProfile returns a simulated NVML for a profile: dgxa100, dgxh100,
// dgxh200, dgxb200 (8 GPUs each) or <model>x<count> such as h100x8,
// a100x4, rtx4090x2, l40sx4. UUIDs are derived from the profile name, so
// they are stable across runs; use FakeProfileSeed to give several fake
// machines distinct ones.
func FakeProfile(name string) (*Fake, error) {
	return FakeProfileSeed(name, name)
}

// FakeProfileSeed is FakeProfile with GPU UUIDs derived from seed.
func FakeProfileSeed(name, seed string) (*Fake, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	model, count, err := parseProfile(name)
	if err != nil {
		return nil, err
	}
	cfgs := gpus.Multiple(count, model.cfg)
	s, err := server.New(
		server.WithGPUs(cfgs...),
		server.WithDriverVersion("550.54.15"),
		server.WithNVMLVersion("12.550.54.15"),
		server.WithCUDADriverVersion(12040),
	)
	if err != nil {
		return nil, fmt.Errorf("fake profile %s: %w", name, err)
	}
	f := &Fake{Server: s, profile: name, load: make([]fakeLoad, count)}
	for i, dev := range s.Devices {
		d, ok := dev.(*server.Device)
		if !ok {
			return nil, fmt.Errorf("fake profile %s: unexpected mock device type %T", name, dev)
		}
		d.UUID = fakeUUID(seed, i)
		total := model.cfg.MemoryMB << 20
		used := model.memUsedMB << 20
		d.MemoryInfo = nvml.Memory{Total: total, Used: used, Free: total - used}
		f.load[i] = fakeLoad{limitMW: model.limitW * 1000, pcieGen: model.pcieGen, pcieWidth: 16, ecc: model.ecc}
		f.SetLoad(i, 0)
		f.wire(d, i)
	}
	return f, nil
}

// wire fills in the telemetry calls go-nvml's mock leaves unset (calling an
// unset mock function panics).
func (f *Fake) wire(d *server.Device, i int) {
	get := func() fakeLoad {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.load[i]
	}
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		l := get()
		return nvml.Utilization{Gpu: l.util, Memory: l.util / 2}, nvml.SUCCESS
	}
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return get().tempC, nvml.SUCCESS }
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return get().powerMW, nvml.SUCCESS }
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return get().limitMW, nvml.SUCCESS }
	d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) {
		if !get().ecc {
			return 0, nvml.ERROR_NOT_SUPPORTED // GeForce cards have no ECC reporting
		}
		return 0, nvml.SUCCESS
	}
	d.GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { return get().pcieGen, nvml.SUCCESS }
	d.GetCurrPcieLinkWidthFunc = func() (int, nvml.Return) { return get().pcieWidth, nvml.SUCCESS }
}

func parseProfile(name string) (fakeModel, int, error) {
	if m, ok := dgxProfiles[name]; ok {
		return m, 8, nil
	}
	if i := strings.LastIndexByte(name, 'x'); i > 0 {
		if m, ok := fakeModels[name[:i]]; ok {
			n, err := strconv.Atoi(name[i+1:])
			if err == nil && n >= 1 && n <= 64 {
				return m, n, nil
			}
			return fakeModel{}, 0, fmt.Errorf("fake profile %q: GPU count must be 1..64", name)
		}
	}
	return fakeModel{}, 0, fmt.Errorf("unknown fake GPU profile %q (known: %s)", name, strings.Join(FakeProfiles(), ", "))
}

// fakeUUID derives a UUID-shaped id, prefixed like NVML's ("GPU-").
func fakeUUID(seed string, i int) string {
	h := sha256.Sum256([]byte(seed + "/" + strconv.Itoa(i)))
	return fmt.Sprintf("GPU-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
