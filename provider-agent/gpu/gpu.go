// Package gpu discovers NVIDIA GPUs through NVML and reports them in the
// protocol's terms. NVML is always passed in as nvml.Interface (the real
// library from nvml.New(), or a simulated one from FakeProfile), never used
// as a global, so the same code runs on a DGX and in a unit test.
//
// The library's sharp edge, measured on a machine without a driver:
// nvml.Init() returns ERROR_LIBRARY_NOT_FOUND cleanly, but calling any other
// NVML function after a failed Init kills the process with a symbol lookup
// error that recover() cannot catch. So Open checks Init and stops there,
// and nothing else in this package runs without a successful Open.
package gpu

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/highway-compute/highway/protocol"
)

// ErrNoNVML: the NVML library is not installed (no NVIDIA driver).
var ErrNoNVML = errors.New("NVML not found: is the NVIDIA driver installed?")

// ErrNoDriver: NVML is installed but the kernel driver is not loaded.
var ErrNoDriver = errors.New("NVIDIA driver not loaded: is the kernel module loaded (nvidia-smi)?")

// Inventory is what NVML sees on this machine at one moment.
type Inventory struct {
	DriverVersion string
	CUDAVersion   string // "12.4"
	NVMLVersion   string
	// Simulated is true when the GPUs come from go-nvml's mock devices
	// (--fake-gpus); everything the agent reports carries it.
	Simulated bool
	// Profile names the fake profile, empty for real hardware.
	Profile string
	GPUs    []protocol.GPU
}

// simulated is implemented by Fake; a real library does not implement it.
type simulated interface {
	Simulated() bool
	ProfileName() string
}

// Session is an initialised NVML. Close it exactly once (every Init is
// paired with a Shutdown, NVML reference-counts them).
type Session struct {
	lib nvml.Interface
}

// Open initialises NVML. Without a driver it returns an error wrapping
// ErrNoNVML or ErrNoDriver and calls nothing else on lib.
func Open(lib nvml.Interface) (*Session, error) {
	if lib == nil {
		return nil, fmt.Errorf("nvml init: %w", ErrNoNVML)
	}
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
		return &Session{lib: lib}, nil
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return nil, fmt.Errorf("nvml init: %w", ErrNoNVML)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, fmt.Errorf("nvml init: %w", ErrNoDriver)
	default:
		return nil, fmt.Errorf("nvml init: %w", ret)
	}
}

// Close shuts NVML down.
func (s *Session) Close() error {
	if ret := s.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml shutdown: %w", ret)
	}
	return nil
}

// Discover opens NVML, takes one snapshot and closes it again.
func Discover(lib nvml.Interface) (Inventory, error) {
	s, err := Open(lib)
	if err != nil {
		return Inventory{}, err
	}
	inv, err := s.Snapshot()
	if cerr := s.Close(); err == nil && cerr != nil {
		return Inventory{}, cerr
	}
	return inv, err
}

// Snapshot reads every GPU. Identity (handle, UUID, name, memory) is
// required: without it the GPU cannot be listed honestly, so a failure
// there fails the snapshot. Telemetry that a GPU does not support (ECC on
// GeForce, power on some vGPUs) is left zero and named in Unsupported.
func (s *Session) Snapshot() (Inventory, error) {
	var inv Inventory
	if f, ok := s.lib.(simulated); ok {
		inv.Simulated, inv.Profile = f.Simulated(), f.ProfileName()
	}
	var ret nvml.Return
	if inv.DriverVersion, ret = s.lib.SystemGetDriverVersion(); ret != nvml.SUCCESS {
		return Inventory{}, fmt.Errorf("nvml driver version: %w", ret)
	}
	if v, ret := s.lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		inv.CUDAVersion = strconv.Itoa(v/1000) + "." + strconv.Itoa(v%1000/10)
	}
	if v, ret := s.lib.SystemGetNVMLVersion(); ret == nvml.SUCCESS {
		inv.NVMLVersion = v
	}
	n, ret := s.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return Inventory{}, fmt.Errorf("nvml device count: %w", ret)
	}
	if n > protocol.MaxGPUs {
		return Inventory{}, fmt.Errorf("nvml reports %d GPUs, more than the protocol's %d", n, protocol.MaxGPUs)
	}
	for i := 0; i < n; i++ {
		g, err := s.device(i)
		if err != nil {
			return Inventory{}, err
		}
		inv.GPUs = append(inv.GPUs, g)
	}
	return inv, nil
}

func (s *Session) device(i int) (protocol.GPU, error) {
	d, ret := s.lib.DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		return protocol.GPU{}, fmt.Errorf("nvml device %d handle: %w", i, ret)
	}
	g := protocol.GPU{Index: i, Free: true}
	if g.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
		return protocol.GPU{}, fmt.Errorf("nvml device %d uuid: %w", i, ret)
	}
	if g.Name, ret = d.GetName(); ret != nvml.SUCCESS {
		return protocol.GPU{}, fmt.Errorf("nvml device %d name: %w", i, ret)
	}
	g.Class = protocol.NormalizeClass(g.Name)
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return protocol.GPU{}, fmt.Errorf("nvml device %d memory: %w", i, ret)
	}
	g.MemoryTotalMiB, g.MemoryUsedMiB = mem.Total>>20, mem.Used>>20

	// optional records a telemetry read. A lost GPU is an error (it must
	// stop being offered); anything else is "this GPU cannot say".
	var lost error
	optional := func(name string, ret nvml.Return) bool {
		switch ret {
		case nvml.SUCCESS:
			return true
		case nvml.ERROR_GPU_IS_LOST:
			lost = fmt.Errorf("nvml device %d (%s) %s: %w", i, g.UUID, name, ret)
		}
		if len(g.Unsupported) < protocol.MaxUnsupported {
			g.Unsupported = append(g.Unsupported, name)
		}
		return false
	}
	if u, ret := d.GetUtilizationRates(); optional("utilization", ret) {
		g.UtilizationPct = min(u.Gpu, 100)
	}
	if t, ret := d.GetTemperature(nvml.TEMPERATURE_GPU); optional("temperature", ret) {
		g.TemperatureC = t
	}
	if p, ret := d.GetPowerUsage(); optional("power", ret) {
		g.PowerMW = p
	}
	if p, ret := d.GetEnforcedPowerLimit(); optional("power_limit", ret) {
		g.PowerLimitMW = p
	}
	if e, ret := d.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); optional("ecc", ret) {
		g.ECCUncorrected = e
	}
	if v, ret := d.GetCurrPcieLinkGeneration(); optional("pcie_gen", ret) {
		g.PCIeGen = v
	}
	if v, ret := d.GetCurrPcieLinkWidth(); optional("pcie_width", ret) {
		g.PCIeWidth = v
	}
	if cur, _, ret := d.GetMigMode(); optional("mig", ret) {
		g.MIGEnabled = cur == nvml.DEVICE_MIG_ENABLE
	}
	if lost != nil {
		return protocol.GPU{}, lost
	}
	return g, nil
}
