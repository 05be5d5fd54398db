package cuda

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Buffer is device memory.
type Buffer struct {
	c    *Context
	ptr  uint64
	size uint64
}

// Alloc allocates n bytes of device memory.
func (c *Context) Alloc(n int) (*Buffer, error) {
	b := &Buffer{c: c, size: uint64(n)}
	if err := c.do(func() error { return c.d.check("cuMemAlloc", c.d.cuMemAlloc(&b.ptr, b.size)) }); err != nil {
		return nil, err
	}
	return b, nil
}

// Free releases the buffer.
func (b *Buffer) Free() error {
	return b.c.do(func() error { return b.c.d.check("cuMemFree", b.c.d.cuMemFree(b.ptr)) })
}

// Write copies src to the start of the buffer.
func (b *Buffer) Write(src []byte) error {
	return b.copy("write of", "into", "cuMemcpyHtoD", src, func(p unsafe.Pointer) int32 {
		return b.c.d.cuMemcpyHtoD(b.ptr, p, uint64(len(src)))
	})
}

// Read copies the start of the buffer into dst.
func (b *Buffer) Read(dst []byte) error {
	return b.copy("read of", "from", "cuMemcpyDtoH", dst, func(p unsafe.Pointer) int32 {
		return b.c.d.cuMemcpyDtoH(p, b.ptr, uint64(len(dst)))
	})
}

// copy runs a host↔device copy of host (at most the buffer's size) on the
// context's thread; what and prep name it in the error.
func (b *Buffer) copy(what, prep, call string, host []byte, run func(unsafe.Pointer) int32) error {
	if uint64(len(host)) > b.size {
		return fmt.Errorf("cuda: %s %d bytes %s a %d-byte buffer", what, len(host), prep, b.size)
	}
	if len(host) == 0 {
		return nil
	}
	return b.c.do(func() error { return b.c.d.check(call, run(unsafe.Pointer(&host[0]))) })
}

// Arg is a kernel argument: a device buffer's address, a 32- or 64-bit
// value, or a struct passed by value as its bytes, laid out as the
// kernel's .param list declares it.
type Arg struct {
	v   uint64
	raw []byte
}

// Raw passes b as one by-value argument (a C struct in the kernel's
// signature, encoded by the caller with the C layout's offsets).
func Raw(b []byte) Arg { return Arg{raw: append([]byte(nil), b...)} }

// Ptr passes the buffer's device address.
func Ptr(b *Buffer) Arg { return Arg{v: b.ptr} }

// U32 passes a 32-bit value.
func U32(v uint32) Arg { return Arg{v: uint64(v)} }

// U64 passes a 64-bit value.
func U64(v uint64) Arg { return Arg{v: v} }

// Size is the buffer's length in bytes.
func (b *Buffer) Size() int { return int(b.size) }

// Addr is the buffer's device address, for pointers inside a Raw struct.
func (b *Buffer) Addr() uint64 { return b.ptr }

// Launch runs the kernel on grid × block threads and waits for it. Each
// argument is passed by address, as cuLaunchKernel wants; little-endian
// storage makes a U32 argument's first four bytes its value.
func (f *Function) Launch(grid, block [3]uint32, shared uint32, args ...Arg) error {
	vals := make([]uint64, len(args)) // heap: the driver reads them during the call
	ptrs := make([]unsafe.Pointer, len(args)+1)
	for i, a := range args {
		vals[i] = a.v
		ptrs[i] = unsafe.Pointer(&vals[i])
		if a.raw != nil {
			ptrs[i] = unsafe.Pointer(&a.raw[0])
		}
	}
	c := f.m.c
	err := c.do(func() error {
		if err := c.d.check("cuLaunchKernel", c.d.cuLaunchKernel(f.fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], shared, 0, &ptrs[0], nil)); err != nil {
			return err
		}
		return c.d.check("cuCtxSynchronize", c.d.cuCtxSynchronize())
	})
	runtime.KeepAlive(vals)
	runtime.KeepAlive(ptrs)
	runtime.KeepAlive(args)
	return err
}

// attrMaxDynamicShared is CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
const attrMaxDynamicShared = 8

// SetMaxDynamicShared lets launches of f ask for up to n bytes of dynamic
// shared memory; above 48 KiB the driver refuses a launch without it.
func (f *Function) SetMaxDynamicShared(n int) error {
	c := f.m.c
	return c.do(func() error {
		return c.d.check("cuFuncSetAttribute", c.d.cuFuncSetAttribute(f.fn, attrMaxDynamicShared, int32(n)))
	})
}
