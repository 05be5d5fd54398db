// Package cuda drives NVIDIA GPUs through the CUDA driver API, loaded at
// run time from libcuda.so.1 with purego: no cgo and no CUDA toolkit on
// the provider's machine, only the driver that any machine with an NVIDIA
// GPU already has. Kernels come as PTX text, which the driver compiles
// for the card it finds (cuModuleLoadData).
//
// A machine without the driver gets ErrNoDriver from Load, with the
// loader's reason; the agent then proves on the CPU and says so.
//
// The CUDA driver binds a context to the calling OS thread, and goroutines
// move between threads, so every call that needs the context runs with the
// goroutine locked to its thread and the context made current first.
package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// ErrNoDriver: libcuda.so.1 is absent or lacks the entry points used here.
var ErrNoDriver = errors.New("no CUDA driver")

// LibraryName is the driver library every NVIDIA driver install provides.
const LibraryName = "libcuda.so.1"

// Error is a failed driver call: its name and the driver's code.
type Error struct {
	Call string
	Code int32
	Name string // the driver's name for Code, e.g. CUDA_ERROR_OUT_OF_MEMORY
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%d)", e.Call, e.Name, e.Code)
}

// Driver is the loaded library. It is safe for concurrent use.
type Driver struct {
	cuInit                    func(flags uint32) int32
	cuDriverGetVersion        func(v *int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGet               func(dev *int32, ordinal int32) int32
	cuDeviceGetName           func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem          func(bytes *uint64, dev int32) int32
	cuDeviceGetUuid           func(uuid *[16]byte, dev int32) int32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease func(dev int32) int32
	cuCtxSetCurrent           func(ctx uintptr) int32
	cuCtxSynchronize          func() int32
	cuModuleLoadData          func(mod *uintptr, image *byte) int32
	cuModuleUnload            func(mod uintptr) int32
	cuModuleGetFunction       func(fn *uintptr, mod uintptr, name *byte) int32
	cuMemAlloc                func(ptr *uint64, bytes uint64) int32
	cuMemFree                 func(ptr uint64) int32
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, bytes uint64) int32
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, bytes uint64) int32
	cuLaunchKernel            func(fn uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params *unsafe.Pointer, extra *unsafe.Pointer) int32
	cuFuncSetAttribute        func(fn uintptr, attr int32, v int32) int32
	cuGetErrorName            func(code int32, name **byte) int32

	initOnce sync.Once
	initErr  error
}

// Load opens the driver library and resolves the calls this package uses.
// The _v2 names are the 64-bit-size entry points the CUDA headers map the
// plain names to.
func Load() (*Driver, error) {
	// dlerror's message lives in the calling OS thread, and purego reads it
	// in a second call: a goroutine moved to another thread in between
	// read an empty message (seen in CI). Pinned, it reads the loader's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lib, err := purego.Dlopen(LibraryName, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDriver, err) // dlerror names the library
	}
	d := &Driver{}
	for _, s := range []struct {
		fn   any
		name string
	}{
		{&d.cuInit, "cuInit"},
		{&d.cuDriverGetVersion, "cuDriverGetVersion"},
		{&d.cuDeviceGetCount, "cuDeviceGetCount"},
		{&d.cuDeviceGet, "cuDeviceGet"},
		{&d.cuDeviceGetName, "cuDeviceGetName"},
		{&d.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&d.cuDeviceGetUuid, "cuDeviceGetUuid_v2"},
		{&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&d.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&d.cuCtxSynchronize, "cuCtxSynchronize"},
		{&d.cuModuleLoadData, "cuModuleLoadData"},
		{&d.cuModuleUnload, "cuModuleUnload"},
		{&d.cuModuleGetFunction, "cuModuleGetFunction"},
		{&d.cuMemAlloc, "cuMemAlloc_v2"},
		{&d.cuMemFree, "cuMemFree_v2"},
		{&d.cuMemcpyHtoD, "cuMemcpyHtoD_v2"},
		{&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{&d.cuLaunchKernel, "cuLaunchKernel"},
		{&d.cuFuncSetAttribute, "cuFuncSetAttribute"},
		{&d.cuGetErrorName, "cuGetErrorName"},
	} {
		sym, err := purego.Dlsym(lib, s.name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s has no %s (driver too old?)", ErrNoDriver, LibraryName, s.name)
		}
		purego.RegisterFunc(s.fn, sym)
	}
	return d, nil
}

func (d *Driver) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	name := "CUDA_ERROR_UNKNOWN"
	var p *byte
	if d.cuGetErrorName(code, &p) == 0 && p != nil {
		name = cString(p)
	}
	return &Error{Call: call, Code: code, Name: name}
}

// cString copies a NUL-terminated C string the driver owns.
func cString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0 && len(b) < 256; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

func (d *Driver) init() error {
	d.initOnce.Do(func() { d.initErr = d.check("cuInit", d.cuInit(0)) })
	return d.initErr
}

// Version is the driver's CUDA version as major*1000 + minor*10.
func (d *Driver) Version() (int, error) {
	if err := d.init(); err != nil {
		return 0, err
	}
	var v int32
	if err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&v)); err != nil {
		return 0, err
	}
	return int(v), nil
}

// Device is one GPU as the driver sees it.
type Device struct {
	Ordinal      int
	Name         string
	Major, Minor int // compute capability
	MemoryBytes  uint64
	SMs          int
	// UUID is the GPU's identity as NVML prints it (GPU-8-4-4-4-12 hex),
	// so a lease's GPUs, known to the agent by NVML UUID, map to ordinals.
	UUID string
}

// Attribute numbers from cuda.h (CUdevice_attribute).
const (
	attrMultiprocessorCount = 16
	attrComputeMajor        = 75
	attrComputeMinor        = 76
)

// Devices lists the GPUs.
func (d *Driver) Devices() ([]Device, error) {
	if err := d.init(); err != nil {
		return nil, err
	}
	var n int32
	if err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n)); err != nil {
		return nil, err
	}
	out := make([]Device, 0, n)
	for i := range n {
		var dev int32
		if err := d.check("cuDeviceGet", d.cuDeviceGet(&dev, i)); err != nil {
			return nil, err
		}
		name := make([]byte, 256)
		if err := d.check("cuDeviceGetName", d.cuDeviceGetName(&name[0], int32(len(name)), dev)); err != nil {
			return nil, err
		}
		x := Device{Ordinal: int(i), Name: cString(&name[0])}
		for _, a := range []struct {
			attr int32
			dst  *int
		}{{attrComputeMajor, &x.Major}, {attrComputeMinor, &x.Minor}, {attrMultiprocessorCount, &x.SMs}} {
			var v int32
			if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&v, a.attr, dev)); err != nil {
				return nil, err
			}
			*a.dst = int(v)
		}
		if err := d.check("cuDeviceTotalMem", d.cuDeviceTotalMem(&x.MemoryBytes, dev)); err != nil {
			return nil, err
		}
		var u [16]byte
		if err := d.check("cuDeviceGetUuid", d.cuDeviceGetUuid(&u, dev)); err != nil {
			return nil, err
		}
		x.UUID = fmt.Sprintf("GPU-%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
		out = append(out, x)
	}
	return out, nil
}

// Context is a device's primary context.
type Context struct {
	d   *Driver
	dev int32
	ctx uintptr
}

// Open retains the primary context of the device with this ordinal.
func (d *Driver) Open(ordinal int) (*Context, error) {
	if err := d.init(); err != nil {
		return nil, err
	}
	c := &Context{d: d}
	if err := d.check("cuDeviceGet", d.cuDeviceGet(&c.dev, int32(ordinal))); err != nil {
		return nil, err
	}
	if err := d.check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&c.ctx, c.dev)); err != nil {
		return nil, err
	}
	return c, nil
}

// do runs f on this goroutine's thread with the context current.
func (c *Context) do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.d.check("cuCtxSetCurrent", c.d.cuCtxSetCurrent(c.ctx)); err != nil {
		return err
	}
	return f()
}

// Close releases the primary context.
func (c *Context) Close() error {
	return c.d.check("cuDevicePrimaryCtxRelease", c.d.cuDevicePrimaryCtxRelease(c.dev))
}

// Module is loaded PTX.
type Module struct {
	c   *Context
	mod uintptr
}

// LoadPTX compiles PTX text for this context's device.
func (c *Context) LoadPTX(ptx []byte) (*Module, error) {
	img := append(append(make([]byte, 0, len(ptx)+1), ptx...), 0)
	m := &Module{c: c}
	err := c.do(func() error { return c.d.check("cuModuleLoadData", c.d.cuModuleLoadData(&m.mod, &img[0])) })
	runtime.KeepAlive(img)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Unload frees the module.
func (m *Module) Unload() error {
	return m.c.do(func() error { return m.c.d.check("cuModuleUnload", m.c.d.cuModuleUnload(m.mod)) })
}

// Function is a kernel of a module.
type Function struct {
	m  *Module
	fn uintptr
}

// Function looks up a kernel by its (unmangled, .entry) name.
func (m *Module) Function(name string) (*Function, error) {
	cname := append([]byte(name), 0)
	f := &Function{m: m}
	err := m.c.do(func() error {
		return m.c.d.check("cuModuleGetFunction "+name, m.c.d.cuModuleGetFunction(&f.fn, m.mod, &cname[0]))
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}
